import type { Logger, RefreshClaim } from "../core/ports.js";
import { settlesWithin } from "./timeout.js";

interface Held {
  claim: RefreshClaim;
  /** performance.now() when the lease last began: when it was taken, then each renewal's start. */
  leaseFromMs: number;
  renewing: boolean;
}

/**
 * Keeps the refresh claims this process holds alive from the moment they are
 * taken until their outcome is stored: a lease older than a third of its length
 * is renewed, so a live holder's lease never lapses (renewed at half the lease
 * at the latest; a failed renewal is tried again a sixth of the lease later)
 * and neither a slow provider nor a slow commit lets another process spend the
 * same refresh token. Ages count from when the claim was taken, not from when
 * it was handed here: the refresher's claims may wait for a provider slot first.
 * One timer serves every claim held: a timer per claim was a measurable part of
 * a refresh storm's CPU.
 */
export class ClaimKeeper {
  readonly #held = new Set<Held>();
  readonly #renewAfterMs: number;
  readonly #renew: (claim: RefreshClaim) => Promise<boolean>;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | null = null;
  #whenEmpty: Array<() => void> = [];
  /** Claims on their way back to the store (see handingBack): not renewed, but waited for. */
  #handingBack = 0;

  /**
   * @param renew renews one claim in the store; false when the claim no longer holds. A failure is
   * logged (the connection id and the store's error: no secret) and tried again at the next tick.
   */
  constructor(leaseMs: number, renew: (claim: RefreshClaim) => Promise<boolean>, logger: Logger) {
    this.#renewAfterMs = Math.max(10, Math.floor(leaseMs / 3));
    this.#renew = renew;
    this.#logger = logger;
  }

  /**
   * Keeps `claim` alive until the returned function is called.
   * @param takenAtMs performance.now() from just before the claim was taken (its lease began then)
   */
  hold(claim: RefreshClaim, takenAtMs: number = performance.now()): () => void {
    const held: Held = { claim, leaseFromMs: takenAtMs, renewing: false };
    this.#held.add(held);
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), Math.max(5, Math.floor(this.#renewAfterMs / 2)));
      this.#timer.unref();
    }
    return () => this.#drop(held);
  }

  /**
   * `claim` is being handed back unspent: its holds stop being renewed (a renewal racing the release
   * would find the claim gone and sound the takeover alarm), and until the returned function is called
   * it counts as in flight, so closing waits for the hand-back and its retries.
   */
  handingBack(claim: RefreshClaim): () => void {
    this.#handingBack++;
    for (const held of this.#held) if (held.claim.claimId === claim.claimId) this.#drop(held);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#handingBack--;
      this.#settle();
    };
  }

  #drop(held: Held): void {
    this.#held.delete(held);
    this.#settle();
  }

  /** Stops the timer once nothing is held, and wakes settled() once nothing is in flight either. */
  #settle(): void {
    if (this.#held.size > 0) return;
    if (this.#timer !== null) {
      clearInterval(this.#timer);
      this.#timer = null;
    }
    if (this.#handingBack > 0) return;
    const waiting = this.#whenEmpty;
    this.#whenEmpty = [];
    for (const resolve of waiting) resolve();
  }

  /**
   * Resolves once no claim is held (every refresh in flight has stored its outcome), or after
   * `timeoutMs`; true if none is held. Closing waits for this: a store closed under a refresh whose
   * provider already answered would lose the rotated tokens.
   */
  async settled(timeoutMs: number): Promise<boolean> {
    if (this.size === 0) return true;
    await settlesWithin(new Promise<void>((resolve) => this.#whenEmpty.push(resolve)), timeoutMs);
    return this.size === 0;
  }

  /** Claims held or being handed back. */
  get size(): number {
    return this.#held.size + this.#handingBack;
  }

  #tick(): void {
    const now = performance.now();
    for (const held of this.#held) {
      if (held.renewing || now - held.leaseFromMs < this.#renewAfterMs) continue;
      this.#renewOne(held, now);
    }
  }

  #renewOne(held: Held, startedAtMs: number): void {
    held.renewing = true;
    this.#renew(held.claim).then(
      (holds) => {
        held.renewing = false;
        if (holds) {
          held.leaseFromMs = startedAtMs;
        } else if (this.#held.has(held)) {
          // Its outcome was not stored yet, and the claim is gone: another process took it over (this
          // process stalled past the lease) or the credential was deleted or reconnected meanwhile.
          // The outcome's write is fenced on the claim and will be refused; nothing to renew.
          this.#drop(held);
          this.#logger.warn(
            { connectionId: held.claim.ref.connectionId, kind: held.claim.ref.kind },
            "a refresh claim was lost before its outcome was stored",
          );
        }
      },
      (error: unknown) => {
        held.renewing = false; // leaseFromMs unchanged: the next tick tries again
        this.#logger.warn(
          { err: error, connectionId: held.claim.ref.connectionId },
          "could not renew a refresh claim",
        );
      },
    );
  }
}
