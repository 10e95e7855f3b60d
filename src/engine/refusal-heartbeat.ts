import type { EngineContext } from "./context.js";
import { reportRefusals } from "./provider-flags.js";
import { settlesWithin } from "./timeout.js";

/**
 * Keeps this process's refusal of its client credentials reported every `timings.providerSyncMs`,
 * whatever else runs. A refresher's passes report it too, but a quiet refresher's passes may be
 * minutes apart (`intervalMs`), and a web process that only calls getToken has none: it would report
 * only when its callers probe, and five quiet minutes (tokens still valid, served from memory) would let
 * its flag go stale: another process lifts it, and the next refusal raises it again and pages again.
 * Idle, and costless beyond a timer, while nothing is refused here.
 */
export class RefusalHeartbeat {
  readonly #ctx: EngineContext;
  #timer: NodeJS.Timeout | null = null;
  #beat: Promise<void> | null = null;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  start(): void {
    if (this.#timer !== null || !this.#ctx.sharedProviderState) return;
    this.#timer = setInterval(() => this.#tick(), this.#ctx.timings.providerSyncMs);
    this.#timer.unref(); // never what keeps a process alive
  }

  /**
   * Stops the timer and waits, at most `timeoutMs`, for a report in progress (before the store closes
   * under it); a report stuck on a store that stopped answering is left behind, as close() leaves a
   * refresh in flight.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    if (this.#beat !== null) await settlesWithin(this.#beat, timeoutMs);
  }

  #tick(): void {
    if (this.#beat !== null || this.#ctx.refusedHere.size === 0) return;
    this.#beat = reportRefusals(this.#ctx)
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
