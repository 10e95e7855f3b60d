import type { EngineContext } from "./context.js";
import { syncProviderFlags } from "./provider-flags.js";

/**
 * Keeps this process's refusal of its client credentials reported while no refresher of its own runs
 * (a web process that only calls getToken). A refresher's pass reports it at its sync; without one the
 * process would report only when its callers probe, and five quiet minutes (tokens still valid, served
 * from memory) would let its flag go stale: another process lifts it, and the next refusal raises it
 * again and pages again. Idle, and costless beyond a timer, while nothing is refused here.
 */
export class RefusalHeartbeat {
  readonly #ctx: EngineContext;
  readonly #refresherRuns: () => boolean;
  #timer: NodeJS.Timeout | null = null;
  #beat: Promise<void> | null = null;

  constructor(ctx: EngineContext, refresherRuns: () => boolean) {
    this.#ctx = ctx;
    this.#refresherRuns = refresherRuns;
  }

  start(): void {
    if (this.#timer !== null || !this.#ctx.sharedProviderState) return;
    this.#timer = setInterval(() => this.#tick(), this.#ctx.timings.providerSyncMs);
    this.#timer.unref(); // never what keeps a process alive
  }

  /** Stops the timer and waits for a report in progress (before the store closes under it). */
  async stop(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    await this.#beat;
  }

  #tick(): void {
    if (this.#beat !== null || this.#ctx.refusedHere.size === 0 || this.#refresherRuns()) return;
    this.#beat = syncProviderFlags(this.#ctx)
      .catch((err: unknown) =>
        this.#ctx.logger.warn(
          { err },
          "could not report this process's refused client credentials; will retry",
        ),
      )
      .finally(() => {
        this.#beat = null;
      });
  }
}
