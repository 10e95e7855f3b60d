import type { Secret } from "../core/secret.js";
import type { CredentialKind, CredentialRef } from "../core/types.js";

export interface CachedToken {
  accessToken: Secret;
  tokenType: string;
  kind: CredentialKind;
  expiresAtMs: number | null;
  issuedAtMs: number;
  hasRefreshToken: boolean;
  /** The store's change stamp read *before* the token was read: any later change makes it differ. */
  stamp: number;
}

/**
 * The hot path's memory: a valid token is served without a database round
 * trip while the store's change stamp for it is unchanged, so no process hands
 * out a token older than the store's.
 */
export class TokenCache {
  readonly #entries = new Map<string, CachedToken>();
  #hits = 0;
  #misses = 0;

  static key(ref: CredentialRef): string {
    return `${ref.connectionId}\u0000${ref.kind}`;
  }
  get(ref: CredentialRef): CachedToken | undefined {
    return this.#entries.get(TokenCache.key(ref));
  }
  set(ref: CredentialRef, entry: CachedToken): void {
    this.#entries.set(TokenCache.key(ref), entry);
  }
  delete(ref: CredentialRef): void {
    this.#entries.delete(TokenCache.key(ref));
  }
  deleteConnection(connectionId: string): void {
    for (const key of this.#entries.keys()) {
      if (key.startsWith(`${connectionId}\u0000`)) this.#entries.delete(key);
    }
  }
  recordHit(): void {
    this.#hits++;
  }
  recordMiss(): void {
    this.#misses++;
  }
  stats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }
}
