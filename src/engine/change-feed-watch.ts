import type { EngineContext } from "./context.js";

/**
 * Logs when this process stops hearing other processes' changes (PostgreSQL: its LISTEN connection
 * lost, or a pooler that passes no notification on) and when it hears them again. While deaf, every
 * token read goes to the store (no stale token is served, but the hot path loses its memory), which an
 * operator should hear about from the log, not only from the `tokenwarden_change_feed_up` gauge. A
 * boolean read every `timings.providerSyncMs`; nothing at all for a store that needs no feed (SQLite).
 */
export class ChangeFeedWatch {
  readonly #ctx: EngineContext;
  #timer: NodeJS.Timeout | null = null;
  #hearing = true;
  #since = 0;

  constructor(ctx: EngineContext) {
    this.#ctx = ctx;
  }

  start(): void {
    if (this.#timer !== null || this.#ctx.store.hearsChanges === undefined) return;
    this.#check();
    this.#timer = setInterval(() => this.#check(), this.#ctx.timings.providerSyncMs);
    this.#timer.unref(); // never what keeps a process alive
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #check(): void {
    const hearing = this.#ctx.store.hearsChanges?.() ?? true;
    if (hearing === this.#hearing) return;
    this.#hearing = hearing;
    const now = this.#ctx.steadyNow();
    if (!hearing) {
      this.#since = now;
      this.#ctx.logger.warn(
        {},
        "not hearing other processes' changes (the store's change feed is down); every token read goes to the store until it is back",
      );
    } else {
      this.#ctx.logger.info(
        { deafForMs: Math.round(now - this.#since) },
        "hearing other processes' changes again; tokens are served from memory again",
      );
    }
  }
}
