/**
 * Periodic health checks (Slack: `auth.test`) inside `serve`: every connection
 * once per period, spread out at a bounded rate. A slot mark in the store
 * (`health_check`, `<id>:<period number>`) makes each check happen in one
 * process only, however many `serve` processes share the database.
 */
import type { Clock, Logger, Store } from "../core/ports.js";
import type { Warden } from "../engine/warden.js";

export interface HealthCheckerOptions {
  warden: Warden;
  store: Store;
  clock: Clock;
  logger: Logger;
  /** Each connection is checked once per period. Default 6 h. */
  periodMs?: number;
  /**
   * Checks per second per process (Slack's auth.test allows far more), raised as far as
   * MAX_PER_SECOND when more connections are live than that rate checks in most of a period.
   */
  perSecond?: number;
  /** Waits between two checks (tests pass one that does not). */
  sleep?: (ms: number) => Promise<void>;
}

/** The fastest a sweep goes: 50 `auth.test` a second, each to its own workspace. */
const MAX_PER_SECOND = 50;
/**
 * Checks waiting for Slack's answer at once, at most: the fastest pace with answers a second slow. A
 * pause is counted from one check's start to the next, so a round trip to Slack does not slow the
 * sweep (awaited before each pause, 172.8 ms apart and 200 ms each made 2.7 a second of 5.8).
 */
const MAX_ANSWERING = MAX_PER_SECOND;
/** A sweep is paced to end within this share of a period, leaving the rest for what it skipped. */
const SWEEP_SHARE_OF_PERIOD = 0.8;

/**
 * The pause between two checks: the configured rate, or a faster one when that rate would not
 * check `live` connections within most of a period (2 a second checks 43,200 in 6 h: a larger
 * deployment was checked every sweep, hours apart, not every period as promised).
 */
export function checkPauseMs(perSecond: number, periodMs: number, live: number): number {
  const needed = live / ((SWEEP_SHARE_OF_PERIOD * periodMs) / 1000);
  // The cap bounds what is raised on our own account, never a rate configured above it.
  return 1000 / Math.max(perSecond, Math.min(needed, MAX_PER_SECOND));
}

const unrefSleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });

export class HealthChecker {
  readonly #o: Required<HealthCheckerOptions>;
  #stopped = true;
  #timer: NodeJS.Timeout | null = null;
  #sweep: Promise<void> | null = null;

  constructor(options: HealthCheckerOptions) {
    this.#o = { periodMs: 6 * 3_600_000, perSecond: 2, sleep: unrefSleep, ...options };
  }

  /** Sweeps at once (the check at start), then every tenth of a period picks up what is left. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#sweep?.catch(() => {});
  }

  /** Checks every connection whose slot in the current period nobody took yet. Returns how many it checked. */
  async sweep(): Promise<number> {
    const { warden, store, clock, periodMs, perSecond, logger, sleep } = this.#o;
    const counts = await store.countConnectionsByStatus();
    const pauseMs = checkPauseMs(perSecond, periodMs, counts.active + counts.refresh_failing);
    let checked = 0;
    let cursor: string | undefined;
    const answering = new Set<Promise<void>>();
    try {
      do {
        const page = await warden.connections.list({ limit: 100, ...(cursor ? { cursor } : {}) });
        for (const c of page.items) {
          if (this.#stopped) return checked;
          if (c.status === "needs_reauth") continue; // nothing a check can change; reconnecting fixes it
          // Not before its slot is taken: a process without the provider (a serve without Slack's client
          // credentials, beside ones with them) would fail the check and keep those that can from it.
          if (!warden.providers.includes(c.provider)) continue;
          const now = clock.now();
          const slot = Math.floor(now / periodMs);
          if (!(await store.markOnce("health_check", `${c.id}:${slot}`, now, (slot + 1) * periodMs)))
            continue;
          const answered: Promise<void> = warden.connections
            .check(c.id)
            .then(
              () => undefined,
              (error: unknown) => logger.warn({ err: error, connectionId: c.id }, "health check failed"),
            )
            .finally(() => answering.delete(answered));
          answering.add(answered);
          checked++;
          if (answering.size >= MAX_ANSWERING) await Promise.race(answering);
          await sleep(pauseMs);
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
      return checked;
    } finally {
      // A sweep (and so stop()) ends once every check it started has its answer.
      await Promise.all(answering);
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#sweep = this.sweep().then(
        () => undefined,
        (error: unknown) => this.#o.logger.warn({ err: error }, "health check sweep failed"),
      );
      void this.#sweep.then(() => this.#schedule(Math.max(1_000, this.#o.periodMs / 10)));
    }, delayMs);
    this.#timer.unref();
  }
}
