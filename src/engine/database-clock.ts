import type { Clock, Logger } from "../core/ports.js";

/** Offsets below this are measurement noise or a well-synced host: instants stay on this host's clock. */
const ALIGN_FROM_MS = 1_000;
/** Beyond this the host's time sync is off: worth a warning even once it is corrected for. */
const WARN_FROM_MS = 5_000;
/** How often the offset is measured again (a host's clock drifts, or is stepped, while it runs). */
const REALIGN_EVERY_MS = 5 * 60_000;
/** How soon a warden that has not measured the offset yet (its first try failed) tries again. */
const RETRY_UNMEASURED_MS = 10_000;
/**
 * The most a lease is moved for a host whose clock is not the database's (see lease()), either way.
 * Each ms is a ms longer that a holder which died mid-refresh keeps its credential from the others,
 * and the retry of a lost answer must land inside Slack's grace window for the old refresh token (a
 * couple of minutes): a 30 s lease plus a minute does. The two margins add up when the holder's host
 * runs ahead of the database and the survivor's behind it, by more than 30 s each; a smaller cap would
 * close that, but leave an unaligned instance beside aligned ones unsafe (a second spend) where it is
 * safe today, with the hosts in agreement and 30-60 s off the database. Aligned instances never rely on
 * the margin for safety: they write and judge leases on the database's clock.
 */
const MAX_LEASE_STRETCH_MS = 60_000;

/**
 * The warden's clock on a store that several hosts share (PostgreSQL): this host's clock plus its
 * measured offset from the database's, once that offset is a second or more. Every instant the
 * instances compare with each other (a lease's end, a due time, a flag's last report, a shared pause)
 * is then read off one timeline, the database's, and single flight no longer rests on the hosts'
 * clocks agreeing: a host whose clock ran 30 s ahead used to see a live holder's lease as lapsed and
 * send the same refresh token again. The offset is measured at start and every five minutes, with the
 * host's wall clock, not an injected one (a test's fake clock is not a host's; its offset reads as none).
 * Between measurements an applied offset runs on the monotonic clock (`elapsedMs`) from the last one:
 * the hosts with an offset are the ones whose time sync is off, and when it comes back it steps their
 * clocks, which must not move this one by the step until the next measurement (a step forward would
 * see live leases as lapsed). `elapsedMs` passes through: a correction that moves `now()` never moves
 * the steady clock.
 */
export class DatabaseAlignedClock implements Clock {
  readonly #base: Clock;
  readonly #measure: () => Promise<number | null | undefined>;
  readonly #logger: Logger;
  #offsetMs = 0;
  /** Where the applied offset put this clock at the last measurement, and the monotonic reading then. */
  #anchor: { alignedMs: number; elapsedMs: number } | null = null;
  #measured = false;
  #warnedMs = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Bumped by start() and stop(): a measurement that ends after either schedules nothing. */
  #chain = 0;
  readonly elapsedMs?: () => number;

  constructor(base: Clock, measure: () => Promise<number | null | undefined>, logger: Logger) {
    this.#base = base;
    this.#measure = measure;
    this.#logger = logger;
    if (base.elapsedMs !== undefined) this.elapsedMs = base.elapsedMs.bind(base);
  }

  now(): number {
    if (this.#anchor !== null && this.elapsedMs !== undefined) {
      return Math.floor(this.#anchor.alignedMs + (this.elapsedMs() - this.#anchor.elapsedMs));
    }
    return this.#base.now() + this.#offsetMs;
  }

  /**
   * A lease taken or judged now. On the database's clock, with a margin for instances that have not
   * aligned (a previous release during a rolling deploy, a first measurement that failed), which read
   * their hosts' clocks, each side at most a minute:
   * - a lease is judged lapsed once it has on the database's clock and, if this host's runs behind
   *   it, on this host's too (`nowMs`): an unaligned holder on a host like this one wrote its end on
   *   that clock;
   * - the end written (`nowMs + leaseMs`) is a full lease past the database's clock and, if this
   *   host's runs ahead, past this host's too: an unaligned reader on a host like this one judges it
   *   on that clock.
   * Aligned instances agree exactly whatever their hosts' clocks say: each end is at least a lease
   * past the database's time, and each judgement at most a minute behind it.
   */
  lease(leaseMs: number): { nowMs: number; leaseMs: number } {
    const alignedMs = this.now();
    const behindMs = Math.min(Math.max(0, this.#offsetMs), MAX_LEASE_STRETCH_MS);
    const aheadMs = Math.min(Math.max(0, -this.#offsetMs), MAX_LEASE_STRETCH_MS);
    return { nowMs: alignedMs - behindMs, leaseMs: leaseMs + behindMs + aheadMs };
  }

  /** Measures the offset again and applies it; a failed measurement keeps the last one. */
  async align(): Promise<void> {
    let measured: number | null | undefined;
    try {
      measured = await this.#measure();
    } catch {
      return; // the store is down: the next measurement, or the next start, tries again
    }
    if (typeof measured !== "number" || !Number.isFinite(measured)) return;
    this.#measured = true;
    const offsetMs = Math.abs(measured) < ALIGN_FROM_MS ? 0 : Math.round(measured);
    if (Math.abs(offsetMs) >= WARN_FROM_MS && Math.abs(offsetMs - this.#warnedMs) >= WARN_FROM_MS) {
      this.#logger.warn(
        { offsetMs },
        `this host's clock is ${Math.round(Math.abs(offsetMs) / 1000)} s ${offsetMs > 0 ? "behind" : "ahead of"} the database's: tokenwarden reads its instants off the database's clock, but the host's time sync (NTP) is off`,
      );
      this.#warnedMs = offsetMs;
    }
    this.#offsetMs = offsetMs;
    this.#anchor =
      offsetMs !== 0 && this.elapsedMs !== undefined
        ? { alignedMs: this.#base.now() + offsetMs, elapsedMs: this.elapsedMs() }
        : null;
  }

  /**
   * Measures again every five minutes (every 10 s until a measurement has succeeded), until stop();
   * never what keeps a process alive.
   */
  start(): void {
    if (this.#timer !== null) return;
    const chain = ++this.#chain;
    const next = () => {
      this.#timer = setTimeout(
        async () => {
          await this.align();
          if (chain === this.#chain) next(); // else stopped (and maybe started again) meanwhile
        },
        this.#measured ? REALIGN_EVERY_MS : RETRY_UNMEASURED_MS,
      );
      this.#timer.unref();
    };
    next();
  }

  stop(): void {
    this.#chain++;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
