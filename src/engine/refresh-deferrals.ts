import type { CredentialRef } from "../core/types.js";
import { refKey, setBounded } from "./token-cache.js";

/** Credentials whose deferral is remembered at most (as bounded as the token cache's connections). */
const MAX_DEFERRED = 100_000;

/**
 * Credentials inside their refresh margin whose refresh would not be sent now (a backoff, another
 * process's claim, a provider pause), each until when (steady clock). Until then a caller whose
 * token still lasts as long as it asked is served from memory, instead of each one reading the store
 * and taking and handing back a claim only to be told the same. A change to the credential (a
 * refresh landing anywhere) still reaches callers through the store's change stamp.
 */
export class RefreshDeferrals {
  readonly #until = new Map<string, number>();
  readonly #steadyNow: () => number;

  constructor(steadyNow: () => number) {
    this.#steadyNow = steadyNow;
  }

  /** Whether a refresh of `ref` is deferred now. */
  has(ref: CredentialRef): boolean {
    const key = refKey(ref);
    const until = this.#until.get(key);
    if (until === undefined) return false;
    if (until > this.#steadyNow()) return true;
    this.#until.delete(key);
    return false;
  }

  /** Defers the refresh of `ref` for `delayMs`, unless it is deferred longer already. */
  defer(ref: CredentialRef, delayMs: number): void {
    const key = refKey(ref);
    const until = this.#steadyNow() + delayMs;
    if ((this.#until.get(key) ?? Number.NEGATIVE_INFINITY) < until) {
      setBounded(this.#until, key, until, MAX_DEFERRED);
    }
  }
}
