import type { EngineContext } from "./context.js";

/**
 * At most once a minute per provider and process: a provider that flaps (one success among failures)
 * must not have every failing credential sent at it on each success.
 */
const SPACING_MS = 60_000;

/**
 * A credential that was failing for an outage refreshed again: the provider is back. The others it
 * held back wait out backoffs that doubled through the outage (up to `backoffMaxMs`, 10 min), while
 * callers of their expired tokens get `provider_unavailable`; they are made due now instead. In the
 * background: the caller whose refresh succeeded does not wait for it, and a failure only leaves the
 * backoffs to run out on their own.
 */
export function endOutageBackoffs(ctx: EngineContext, provider: string): void {
  const store = ctx.store;
  if (store.endOutageBackoffs === undefined) return;
  const now = ctx.steadyNow();
  const last = ctx.outageEndedAtMs.get(provider);
  if (last !== undefined && now - last < SPACING_MS) return;
  ctx.outageEndedAtMs.set(provider, now);
  // One in doubt waits the first backoff from now, as its own first retry would have from its failure.
  store.endOutageBackoffs(provider, ctx.clock.now(), ctx.timings.backoffBaseMs).then(
    (moved) => {
      if (moved > 0) {
        ctx.logger.info(
          { provider, moved },
          "provider answers again: the refreshes backed off during its outage are due now",
        );
      }
    },
    (error: unknown) =>
      ctx.logger.warn(
        { err: error, provider },
        "could not end the backoffs of the provider's outage; they run out on their own",
      ),
  );
}
