/**
 * Keeps the event log bounded inside `serve`: every refresh appends an event, so without this the
 * table grows by two rows per connection per day, forever. Each pass deletes what is older than the
 * retention in batches of its own short transaction (refreshes keep committing between them), and
 * any number of `serve` processes may run it: a batch another one already deleted is simply empty.
 */
import type { Clock, Logger, Store } from "../core/ports.js";
import { pruneEventsInBatches } from "../engine/prune-events.js";

export interface EventPrunerOptions {
  store: Pick<Store, "pruneEvents">;
  clock: Clock;
  logger: Logger;
  retentionMs: number;
  /** Between passes. Default 1 h. */
  everyMs?: number;
  /** Events per batch. Default 1000. */
  batchSize?: number;
}

/** A pass stops after this many batches and leaves the rest to the next one: bounded work per pass. */
const MAX_BATCHES_PER_PASS = 100;

export class EventPruner {
  readonly #o: Required<EventPrunerOptions>;
  #timer: NodeJS.Timeout | null = null;
  #pass: Promise<void> | null = null;
  #stopped = true;

  constructor(options: EventPrunerOptions) {
    this.#o = { everyMs: 3_600_000, batchSize: 1_000, ...options };
  }

  /** The first pass soon after start (not at once: startup has enough to do), then every `everyMs`. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(Math.min(60_000, this.#o.everyMs));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#pass?.catch(() => {});
  }

  /** One pass; returns how many events it deleted. */
  async prune(): Promise<number> {
    const { store, clock, retentionMs, batchSize } = this.#o;
    return pruneEventsInBatches(store, clock.now() - retentionMs, {
      batchSize,
      maxBatches: MAX_BATCHES_PER_PASS,
      stopped: () => this.#stoppedMidPass(),
    });
  }

  /** Only a pass the timer started stops early; one called directly (tests, tools) runs whole. */
  #stoppedMidPass(): boolean {
    return this.#stopped && this.#pass !== null;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#pass = this.prune().then(
        (pruned) => {
          if (pruned > 0) this.#o.logger.info({ pruned }, "pruned old events");
        },
        (error: unknown) => this.#o.logger.warn({ err: error }, "event pruning failed; retrying later"),
      );
      void this.#pass.then(() => {
        this.#pass = null;
        this.#schedule(this.#o.everyMs);
      });
    }, delayMs);
    this.#timer.unref();
  }
}
