import type { Secret } from "../core/secret.js";
import type { CredentialKind, CredentialRef } from "../core/types.js";

export interface CachedToken {
  accessToken: Secret;
  tokenType: string;
  kind: CredentialKind;
  provider: string;
  expiresAtMs: number | null;
  /** The refresh margin (0 without a refresh token) and half the lifetime, computed once at fill. */
  marginMs: number;
  halfLifetimeMs: number;
  /**
   * Until when (steady clock) a refresh of it would not be sent (a backoff, another process's claim, a
   * provider pause), as the read that filled this entry said; -Infinity when it would. Inside its
   * margin it is served from here only until then: kept with the token, it goes with any change.
   */
  refreshDeferredUntilMs: number;
  /** The store's change stamp read *before* the token was read: any later change makes it differ. */
  stamp: number;
}

/**
 * Connections whose tokens are kept at most. A process serving more than this many connections reads
 * the least recently added back from the store (one indexed read) rather than hold every token it
 * ever served, for a table of millions, in memory.
 */
export const DEFAULT_CACHED_CONNECTIONS = 100_000;

/**
 * The hot path's memory: a valid token is served without a database round
 * trip while the store's change stamp for it is unchanged, so no process hands
 * out a token older than the store's.
 */
export class TokenCache {
  // Nested by connection, so the hot path builds no key string.
  readonly #entries = new Map<string, Map<CredentialKind, CachedToken>>();
  readonly #maxConnections: number;
  #hits = 0;
  #misses = 0;

  constructor(maxConnections = DEFAULT_CACHED_CONNECTIONS) {
    this.#maxConnections = maxConnections;
  }

  get(connectionId: string, kind: CredentialKind): CachedToken | undefined {
    return this.#entries.get(connectionId)?.get(kind);
  }
  set(ref: CredentialRef, entry: CachedToken): void {
    let kinds = this.#entries.get(ref.connectionId);
    if (kinds === undefined) {
      kinds = new Map();
      setBounded(this.#entries, ref.connectionId, kinds, this.#maxConnections);
    }
    kinds.set(ref.kind, entry);
  }
  delete(ref: CredentialRef): void {
    this.#entries.get(ref.connectionId)?.delete(ref.kind);
  }
  deleteConnection(connectionId: string): void {
    this.#entries.delete(connectionId);
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
  /** Connections with a cached token. */
  get size(): number {
    return this.#entries.size;
  }
}

/**
 * `map.set` that first drops the entry added first when a new key would pass `max`. Oldest added
 * first out: a hit costs no bookkeeping, and an entry dropped while in use comes back on its next
 * read from the store.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (map.size >= max && !map.has(key)) {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  }
  map.set(key, value);
}

/** Single-flight key of a credential. */
export function refKey(ref: CredentialRef): string {
  return `${ref.connectionId}\u0000${ref.kind}`;
}
