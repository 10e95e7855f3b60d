import type { RefreshOutcome } from "../core/ports.js";
import type { EngineContext } from "./context.js";

/** A 429 without Retry-After: a second, as before (the credential's own backoff spaces its retries). */
const RATE_LIMIT_DEFAULT_PAUSE_MS = 1_000;
/**
 * The longest a 429 pauses every refresh of its provider, whatever its Retry-After says (a proxy's, or
 * a malformed date read as a day): then one refresh goes out, and a provider still limiting says so
 * again. The credential that got the 429 keeps the full Retry-After in its own backoff. A success does
 * not end the pause early: in a storm it may come from a request sent before the 429.
 */
const RATE_LIMIT_MAX_PAUSE_MS = 60_000;
/**
 * A pause this process would share is written only when its end is this far from the end the store is
 * known to hold: a burst of 429s (every call in flight gets one) moves the end by milliseconds each.
 */
const SHARE_STEP_MS = 1_000;
/**
 * How much later than this process's now + the longest pause a recorded end may be and still be kept:
 * instances' clocks disagree by up to a couple of seconds (offsets under 1 s are not corrected, and a
 * measurement is off by up to half a second), and a live minute's pause recorded by a host a little
 * ahead must not read as one dated by a clock that ran away.
 */
const CLOCK_SLACK_MS = 5_000;

/** Whether a 429 still pauses every refresh of `provider` in this process (see pauseIfRateLimited). */
export function providerPaused(ctx: EngineContext, provider: string): boolean {
  return ctx.steadyNow() < (ctx.providerPausedUntil.get(provider)?.untilSteadyMs ?? Number.NEGATIVE_INFINITY);
}

/**
 * A 429 from the token endpoint pauses every refresh of that provider in this process for its
 * Retry-After, at once, and is recorded for the other instances (Slack limits the endpoint per app),
 * which adopt it at their next sync (syncProviderPauses). The record is not awaited: the answer's
 * caller must not wait on the store for it, and a record that fails costs only other instances a 429.
 */
export function pauseIfRateLimited(
  ctx: EngineContext,
  provider: string,
  outcome: RefreshOutcome | undefined,
): void {
  if (outcome?.kind !== "failed") return;
  const c = outcome.classification;
  if (c.kind !== "transient" || c.reason !== "rate_limited") return;
  const pauseMs = Math.min(c.retryAfterMs ?? RATE_LIMIT_DEFAULT_PAUSE_MS, RATE_LIMIT_MAX_PAUSE_MS);
  const current = ctx.providerPausedUntil.get(provider);
  const untilSteadyMs = ctx.steadyNow() + pauseMs;
  if (untilSteadyMs <= (current?.untilSteadyMs ?? Number.NEGATIVE_INFINITY)) return;
  const untilMs = ctx.clock.now() + pauseMs;
  const sharedUntilMs = current?.sharedUntilMs ?? 0;
  // Either way: a known end far ahead of this one was dated by a clock that ran ahead, and this 429 is newer.
  const share = ctx.sharedProviderState && Math.abs(untilMs - sharedUntilMs) >= SHARE_STEP_MS;
  ctx.providerPausedUntil.set(provider, {
    untilSteadyMs,
    error: c.error,
    sharedUntilMs: share ? untilMs : sharedUntilMs,
  });
  if (!share) return;
  // A recorded pause ending later than any 429 now could have asked for was dated by a clock that ran
  // ahead: replaced, so it stops no genuine 429 from being shared. One that ends later within that is
  // kept: a shorter Retry-After heard meanwhile must not cut a live pause short.
  const replaceEndingAfterMs = ctx.clock.now() + RATE_LIMIT_MAX_PAUSE_MS + CLOCK_SLACK_MS;
  ctx.store
    .pauseProvider({ provider, untilMs, error: c.error }, { replaceEndingAfterMs })
    .catch((err: unknown) => {
      ctx.logger.warn({ provider, err }, "could not record the provider's rate limit for other instances");
    });
}

/**
 * Adopts the pauses other instances recorded (a 429 they got), at startup and at each refresher
 * sync: until the recorded end, on this process's steady clock, and never longer than a 429 here
 * would pause (the end is dated by the other host's clock).
 */
export async function syncProviderPauses(ctx: EngineContext): Promise<void> {
  if (!ctx.sharedProviderState) return;
  for (const name of ctx.providers.keys()) {
    const pause = await ctx.store.getProviderPause(name);
    const current = ctx.providerPausedUntil.get(name);
    // Each record is adopted once: read again at the next sync it would otherwise restart the minute's
    // cap, and a pause dated by a clock a day ahead would hold every instance back for a day. A record
    // with another end is a newer 429 (the store keeps the latest), whenever it ends.
    if (pause === null || pause.untilMs === current?.sharedUntilMs) continue;
    const remainingMs = Math.min(pause.untilMs - ctx.clock.now(), RATE_LIMIT_MAX_PAUSE_MS);
    if (remainingMs <= 0) continue;
    const untilSteadyMs = Math.max(
      ctx.steadyNow() + remainingMs,
      current?.untilSteadyMs ?? Number.NEGATIVE_INFINITY,
    );
    ctx.providerPausedUntil.set(name, { untilSteadyMs, error: pause.error, sharedUntilMs: pause.untilMs });
  }
}
