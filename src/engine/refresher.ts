import { TokenwardenError } from "../core/errors.js";
import type { DueClaim, Logger, UnreadableCredential } from "../core/ports.js";
import { isTimingMs, MAX_TIMING_MS } from "../core/timing-bounds.js";
import type { EngineContext } from "./context.js";
import { REFRESHER_PROBE_MS, syncProviderFlags } from "./provider-flags.js";
import { providerPaused, syncProviderPauses } from "./provider-pauses.js";
import { handBack, runClaim } from "./refresh.js";
import { settlesWithin } from "./timeout.js";

export interface RefresherOptions {
  /** How often to look for due credentials when the last look found none. */
  intervalMs?: number;
  /** Refreshes in flight at once, per provider (Slack allows 600 oauth.v2.access per minute per app). */
  concurrencyPerProvider?: number;
}

/**
 * Refuses options that would quietly break the refresher: an interval of 0, below 0 or NaN fires at
 * once, over and over (a claim query every millisecond), and a concurrency below 1 claims nothing, so
 * no token is ever refreshed ahead. Throws `config_invalid` naming the option.
 */
export function checkRefresherOptions(options: RefresherOptions): void {
  const { intervalMs, concurrencyPerProvider } = options;
  if (intervalMs !== undefined && !isTimingMs(intervalMs)) {
    throw new TokenwardenError(
      "config_invalid",
      `startRefresher: intervalMs must be a whole number of milliseconds from 1 to ${MAX_TIMING_MS} (a day)`,
    );
  }
  if (
    concurrencyPerProvider !== undefined &&
    !(Number.isSafeInteger(concurrencyPerProvider) && concurrencyPerProvider >= 1)
  ) {
    throw new TokenwardenError(
      "config_invalid",
      "startRefresher: concurrencyPerProvider must be a whole number from 1",
    );
  }
}

/** An operator's problem (a key dropped from the ring, a value altered at rest), named by key id only. */
function logUnreadable(logger: Logger, u: UnreadableCredential): void {
  logger.error(
    {
      connectionId: u.ref.connectionId,
      kind: u.ref.kind,
      provider: u.provider,
      keyId: u.keyId,
      retryAt: new Date(u.retryAtMs).toISOString(),
      err: u.error,
    },
    "a stored refresh token cannot be opened (is its key still configured?); skipped until retryAt",
  );
}

/** A claim waiting for a provider slot. */
interface Waiting {
  claim: DueClaim;
  /** performance.now() when the claim was asked for: its lease counts from then. */
  claimedAt: number;
  /** Taken as a flagged provider's probe. */
  probe: boolean;
}

/**
 * The background refresher (invariant 3): claims due credentials in batches
 * (the store finds them through an index and spreads them over instances),
 * refreshes them with bounded concurrency per provider, and pauses a provider
 * that is rate limiting or rejecting our client credentials.
 */
export class Refresher {
  readonly #ctx: EngineContext;
  readonly #intervalMs: number;
  readonly #concurrency: number;
  readonly #inFlight = new Map<string, number>();
  #nextStateSyncAt = 0;
  readonly #running = new Set<Promise<void>>();
  /**
   * Claimed, waiting for a provider slot: the next claims are fetched while the current calls run,
   * so no slot sits empty for a claim's round trip. Each is started within a third of its lease or
   * released (its heartbeat, started with the call, must come before the lease lapses).
   */
  #ready: Array<Waiting> = [];
  /** Set by stop(): waiting claims are released instead of started. */
  #handingBack = false;
  #timer: NodeJS.Timeout | null = null;
  #stopped = true;
  #ticking: Promise<void> | null = null;

  constructor(ctx: EngineContext, options: RefresherOptions = {}) {
    checkRefresherOptions(options);
    this.#ctx = ctx;
    this.#intervalMs = options.intervalMs ?? 1_000;
    this.#concurrency = options.concurrencyPerProvider ?? 16;
  }

  get running(): boolean {
    return !this.#stopped;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#handingBack = false;
    this.#schedule(0);
  }

  /**
   * Stops looking for work, hands back claims not yet started, and waits (bounded) for refreshes in
   * flight to finish and persist.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.#stopped = true;
    this.#handingBack = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const settled = (async () => {
      // A pass still claiming hands its claims back itself (#drain, once it returns).
      await this.#ticking?.catch(() => {});
      this.#drain();
      await Promise.all(this.#running);
    })();
    await settlesWithin(settled, timeoutMs);
  }

  /**
   * One pass: claims due refreshes for the free provider slots and as many again to start as slots
   * free up, and starts what it can. Returns how many it claimed.
   */
  async tick(): Promise<number> {
    const ctx = this.#ctx;
    // Another process may flag (or clear) a provider (timings.providerSyncMs).
    if (performance.now() >= this.#nextStateSyncAt) {
      this.#nextStateSyncAt = performance.now() + ctx.timings.providerSyncMs;
      await syncProviderFlags(ctx);
      await syncProviderPauses(ctx);
    }
    this.#drain(); // also hands back claims that waited too long while every slot was busy
    let claimed = 0;
    // Per provider, each with its own limit: a provider this instance does not run (or has paused, or
    // is only probing) never has its rows taken, so they neither use up the limit nor come back released.
    for (const provider of ctx.providers.keys()) {
      // Read per provider: a lease is counted from this instant, and an earlier provider's slow claim
      // must not have the store's lease end before the one the claim keeper counts.
      const lease = ctx.leaseWindow();
      const capacity = this.#capacity(provider, true);
      if (!this.#worthClaiming(provider, capacity)) continue;
      const claimedAt = performance.now(); // the leases begin before the round trip that takes them
      // A flagged provider's claim is its probe (capacity gave it one slot); others wait behind a
      // refusal that comes meanwhile, and are handed back rather than sent (see #start).
      const probe = ctx.flaggedProviders.has(provider);
      const claims = await ctx.store.claimDue({
        owner: ctx.owner,
        nowMs: ctx.clock.now(),
        leaseNowMs: lease.nowMs,
        leaseMs: lease.leaseMs,
        limit: capacity,
        provider,
        onUnreadable: (u) => {
          logUnreadable(ctx.logger, u);
          if (u.unparked !== undefined) void handBack(ctx, u.unparked);
        },
      });
      for (const claim of claims) this.#ready.push({ claim, claimedAt, probe });
      claimed += claims.length;
      this.#drain();
    }
    return claimed;
  }

  /** Waits until every refresh this refresher claimed has been started and has finished. */
  async idle(): Promise<void> {
    while (this.#running.size > 0 || this.#ready.length > 0) {
      if (this.#running.size === 0) this.#drain();
      await Promise.all([...this.#running]);
    }
  }

  /** Starts waiting claims whose provider has a free slot; releases any that waited too long. */
  #drain(): void {
    const staleBefore = performance.now() - this.#ctx.timings.leaseMs / 3;
    const queue = this.#ready;
    // From the front, in the order the claims were taken (so the stale ones come first). This runs at
    // every answer and the queue is long: shift() takes the front without copying the rest.
    while (queue.length > 0) {
      const entry = queue[0] as (typeof queue)[number];
      if (this.#handingBack || entry.claimedAt < staleBefore) {
        queue.shift();
        this.#track(handBack(this.#ctx, entry.claim));
      } else if (this.#hasSlot(entry.claim.credential.provider)) {
        queue.shift();
        this.#start(entry);
      } else {
        break;
      }
    }
    // With one provider, the rest wait for the slots the front one waits for. With several, another
    // provider's claims further back may have a free slot.
    if (queue.length === 0 || this.#ctx.providers.size === 1) return;
    this.#ready = [];
    for (const entry of queue) {
      if (this.#hasSlot(entry.claim.credential.provider)) this.#start(entry);
      else this.#ready.push(entry);
    }
  }

  #hasSlot(provider: string): boolean {
    return (this.#inFlight.get(provider) ?? 0) < this.#concurrency;
  }

  /**
   * How many claims of `provider` a pass would take now. With `probe`, a flagged provider's probe slot
   * is due and taken; without, probes are left to the passes the timer runs.
   */
  #capacity(provider: string, probe: boolean): number {
    if (providerPaused(this.#ctx, provider)) return 0;
    let free: number;
    if (this.#ctx.flaggedProviders.has(provider)) {
      // One probe a minute finds out when the client credentials are fixed, without hammering meanwhile.
      const probeAt = this.#ctx.refresherProbeAtMs;
      const steadyMs = this.#ctx.steadyNow();
      if (!probe || steadyMs < (probeAt.get(provider) ?? Number.NEGATIVE_INFINITY)) return 0;
      probeAt.set(provider, steadyMs + REFRESHER_PROBE_MS);
      free = 1;
    } else {
      // The free slots, and as many again claimed ahead to start when slots free up.
      free = 2 * this.#concurrency - (this.#inFlight.get(provider) ?? 0) - this.#waiting(provider);
    }
    // A refresh whose answer is being stored holds no provider slot. Calls, claims waiting and answers
    // being stored together stay within four times the slots: answers wait for a group commit behind
    // the one in flight, and with room for only twice the slots they took the slots' share, so calls
    // went out below the cap (bench/engine.bench.ts). If the store falls further behind the provider,
    // claiming stops rather than pile up answers in memory.
    const limit = 4 * this.#concurrency * this.#ctx.providers.size;
    return Math.min(free, limit - this.#running.size - this.#ready.length);
  }

  /** Claims of `provider` waiting for a slot. */
  #waiting(provider: string): number {
    if (this.#ctx.providers.size === 1) return this.#ready.length;
    let n = 0;
    for (const entry of this.#ready) if (entry.claim.credential.provider === provider) n++;
    return n;
  }

  /**
   * While refreshes of a provider are in flight or waiting, a pass claims once a quarter of its slots'
   * worth is wanted, in one statement, rather than one claim per finished refresh.
   */
  #worthClaiming(provider: string, capacity: number): boolean {
    if (capacity <= 0) return false;
    const busy = (this.#inFlight.get(provider) ?? 0) + this.#waiting(provider);
    return busy === 0 || capacity >= Math.max(1, Math.floor(this.#concurrency / 4));
  }

  #start({ claim, claimedAt, probe }: Waiting): void {
    const ctx = this.#ctx;
    const job = (async () => {
      const credential = claim.credential;
      const provider = credential.provider;
      // Paused, not run here, or refused our client credentials since this was claimed (a claim taken
      // ahead, or by a pass that answer woke): handed back unspent, not sent with those credentials.
      const refused = ctx.flaggedProviders.has(provider) && !probe;
      if (providerPaused(ctx, provider) || !ctx.providers.has(provider) || refused) {
        await handBack(ctx, claim);
        return;
      }
      this.#inFlight.set(provider, (this.#inFlight.get(provider) ?? 0) + 1);
      let answered = false;
      // The cap is on calls to the provider: its slot frees as soon as the provider has answered, and
      // the next call starts while this refresh's outcome is being stored.
      const release = () => {
        if (answered) return;
        answered = true;
        this.#inFlight.set(provider, (this.#inFlight.get(provider) ?? 1) - 1);
        this.#drain();
        this.#wake();
      };
      try {
        await runClaim(
          ctx,
          { kind: "claimed", claim, credential, previousAttemptLost: claim.previousAttemptLost },
          release,
          claimedAt,
        );
      } finally {
        release();
      }
    })().catch((error: unknown) => {
      // Failures are already recorded on the credential and announced; this is the trace for operators.
      ctx.logger.debug(
        { err: error, connectionId: claim.ref.connectionId, kind: claim.ref.kind },
        "background refresh failed",
      );
    });
    this.#track(job);
  }

  /** Counted as running until it settles (stop() waits for it; capacity counts it). */
  #track(work: Promise<void>): void {
    this.#running.add(work);
    void work.finally(() => {
      this.#running.delete(work);
      this.#wake();
    });
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#ticking = this.tick()
        .then((claimed) => this.#schedule(claimed > 0 ? 0 : this.#intervalMs))
        .catch((error: unknown) => {
          this.#ctx.logger.warn({ err: error }, "refresher pass failed; retrying");
          this.#schedule(this.#intervalMs);
        })
        .finally(() => {
          this.#ticking = null;
        });
    }, delayMs);
    this.#timer.unref();
  }

  /**
   * A refresh finished: if a pass is only waiting on its timer and would claim now, run it now to
   * refill the free slots. (Waking a pass for every answer cost two timers and a pass per refresh.)
   */
  #wake(): void {
    if (this.#stopped || this.#ticking !== null || this.#timer === null) return;
    const providers = [...this.#ctx.providers.keys()];
    if (!providers.some((p) => this.#worthClaiming(p, this.#capacity(p, false)))) return;
    clearTimeout(this.#timer);
    this.#schedule(0);
  }
}
