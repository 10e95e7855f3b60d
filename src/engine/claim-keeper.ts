import type { Logger, RefreshClaim } from "../core/ports.js";

interface Held {
  claim: RefreshClaim;
  renewedAtMs: number;
}

/**
 * Keeps the refresh claims this process holds alive while their provider calls
 * run: a claim older than a third of the lease is renewed, so a live holder's
 * lease never lapses (worst case at half the lease) and a slow provider never
 * lets another process spend the same refresh token. One timer serves every
 * claim held: a timer per claim was a measurable part of a refresh storm's CPU.
 */
export class ClaimKeeper {
  readonly #held = new Set<Held>();
  readonly #renewAfterMs: number;
  readonly #renew: (claim: RefreshClaim) => Promise<unknown>;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | null = null;

  /**
   * @param renew renews one claim in the store. A failed renewal is logged and tried again a third
   * of the lease later, as any renewal; it is no secret, only the connection id and the store's error.
   */
  constructor(leaseMs: number, renew: (claim: RefreshClaim) => Promise<unknown>, logger: Logger) {
    this.#renewAfterMs = Math.max(10, Math.floor(leaseMs / 3));
    this.#renew = renew;
    this.#logger = logger;
  }

  /** Keeps `claim` alive until the returned function is called. */
  hold(claim: RefreshClaim): () => void {
    const held: Held = { claim, renewedAtMs: performance.now() };
    this.#held.add(held);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), Math.max(5, Math.floor(this.#renewAfterMs / 2)));
      this.#timer.unref();
    }
    return () => {
      this.#held.delete(held);
      if (this.#held.size === 0 && this.#timer !== null) {
        clearInterval(this.#timer);
        this.#timer = null;
      }
    };
  }

  get size(): number {
    return this.#held.size;
  }

  #tick(): void {
    const now = performance.now();
    for (const held of this.#held) {
      if (now - held.renewedAtMs < this.#renewAfterMs) continue;
      held.renewedAtMs = now;
      this.#renew(held.claim).catch((error: unknown) => {
        this.#logger.warn(
          { err: error, connectionId: held.claim.ref.connectionId },
          "could not renew a refresh claim",
        );
      });
    }
  }
}
