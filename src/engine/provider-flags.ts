import type { Provider } from "../core/ports.js";
import { STALE_FLAG_MS } from "../core/provider-flag-times.js";
import type { ProviderState } from "../core/types.js";
import type { EngineContext, Refusal } from "./context.js";

/** A flagged provider's probe from callers: one refresh per process every 10 s. */
export const CALLER_PROBE_MS = 10_000;
/** A flagged provider's probe from the refresher: one a minute per process, however many passes run. */
export const REFRESHER_PROBE_MS = 60_000;

/**
 * How long a flag naming other refused credentials goes unreported before a refused process takes it
 * over (their process has stopped: a live one re-dates it every REASSERT_MS).
 */
export const OTHERS_SILENT_MS = 2 * 60_000;
/** How old a flag's last report gets before a refused process's sync reports again (a write: on SQLite it costs every process its cached tokens, so not every 5 s). */
export const REASSERT_MS = 60_000;

/**
 * Whether a stored `misconfigured` state holds this warden's provider back: it does when it names the
 * client credentials this warden sends, or names none (recorded before flags named them, or by a
 * provider that cannot say). A refusal of other credentials (the old secret, while a rolling deploy
 * brings in the new one) says nothing of these.
 */
export function flagApplies(state: ProviderState | null, provider: Provider | undefined): boolean {
  if (state?.status !== "misconfigured") return false;
  const flagged = state.clientFingerprint ?? null;
  const ours = provider?.clientFingerprint;
  return flagged === null || ours === undefined || flagged === ours;
}

/** Holds this process back from `provider`, as of now unless it already was. */
function raiseFlag(ctx: EngineContext, provider: string): void {
  if (!ctx.flaggedProviders.has(provider)) ctx.flaggedProviders.set(provider, ctx.steadyNow());
}

/**
 * The provider refused this process's client credentials: it holds back from `provider` (probes only,
 * the next a full interval away) until its own probe succeeds, whatever a sync reads meanwhile.
 */
export function holdBack(ctx: EngineContext, provider: string): Refusal {
  let refusal = ctx.refusedHere.get(provider);
  if (refusal === undefined) {
    refusal = { announced: false, recording: Promise.resolve() };
    ctx.refusedHere.set(provider, refusal);
  }
  // Its own refusal is the newest news: answers to requests sent before it prove nothing either.
  const steadyMs = ctx.steadyNow();
  ctx.flaggedProviders.set(provider, Math.max(ctx.flaggedProviders.get(provider) ?? steadyMs, steadyMs));
  ctx.providerProbeAtMs.set(provider, steadyMs + CALLER_PROBE_MS);
  ctx.refresherProbeAtMs.set(provider, steadyMs + REFRESHER_PROBE_MS);
  return refusal;
}

/**
 * The provider refused this process's client credentials: it holds back (probes only) until its own
 * probe succeeds, and records the flag, naming these credentials. The error log and the
 * `provider_misconfigured` emission come once per process when it is first refused, and whenever the
 * shared status changes (the store then queues the webhook). A store that cannot record it is logged,
 * not thrown: the refusal is the caller's answer, and this process holds back all the same.
 */
export async function flagProvider(
  ctx: EngineContext,
  provider: string,
  error: string,
  atMs: number,
  /** When the refused request was sent. */
  sentAtMs: number,
): Promise<void> {
  const refusal = holdBack(ctx, provider);
  const fresh = !refusal.announced;
  refusal.announced = true;
  // One record at a time per process: of a burst of refusals, the first announces, and a later one
  // whose write happened to change the status must not announce it again.
  const previous = refusal.recording;
  let done = () => {};
  refusal.recording = new Promise<void>((resolve) => {
    done = resolve;
  });
  await previous;
  let changed = false;
  if (ctx.sharedProviderState) {
    try {
      // A flag another refused process reported after this request was sent stays named after it:
      // this refusal may be a late answer about credentials that work by now.
      changed = await ctx.store.setProviderState(
        {
          provider,
          status: "misconfigured",
          reason: "provider_misconfigured",
          lastError: error,
          sinceMs: atMs,
          clientFingerprint: ctx.providers.get(provider)?.clientFingerprint ?? null,
          assertedAtMs: atMs,
        },
        { keepIfReportedAfterMs: sentAtMs },
      );
    } catch (err) {
      ctx.logger.warn(
        { provider, err },
        "could not record the provider flag; this process holds back all the same",
      );
    }
  }
  done();
  if (changed || fresh) {
    ctx.logger.error(
      { provider, error },
      "provider rejected our client credentials; connections left untouched",
    );
    ctx.events.emit("provider_misconfigured", { provider, error, atMs });
  }
}

/**
 * A refresh of a flagged provider went through (its probe): these credentials work. Lifts the shared
 * flag only when it names them or none: a flag of other credentials (a process still on an old
 * secret) is theirs to lift. The process whose lift ended the flag announces it (the store queues the
 * webhook in that transaction): of processes whose probes go through at once, one does. A `local`
 * flag is this process's own, so lifting it is announced here.
 */
export async function markProviderHealthy(
  ctx: EngineContext,
  provider: string,
  atMs: number,
  /**
   * When (steady) the request that proved them was sent: one sent by the time the refusal holding
   * this process back was known (its own, or the shared flag's) proves nothing about the credentials now.
   */
  sentSteadyMs: number,
): Promise<void> {
  // Checked in memory: a store read per refresh would tax every refresh for a rare state.
  const flaggedSince = ctx.flaggedProviders.get(provider);
  if (flaggedSince === undefined || sentSteadyMs <= flaggedSince) return;
  ctx.flaggedProviders.delete(provider);
  ctx.refusedHere.delete(provider);
  const accepted = "provider accepted our client credentials again; flag lifted";
  if (!ctx.sharedProviderState) {
    announceLift(ctx, provider, atMs, accepted);
    return;
  }
  try {
    const lifted = await ctx.store.liftProviderFlag(provider, {
      clientFingerprint: ctx.providers.get(provider)?.clientFingerprint ?? null,
      nowMs: atMs,
    });
    if (lifted) announceLift(ctx, provider, atMs, accepted);
  } catch (err) {
    // Not thrown: the refresh that proved the credentials is stored, and its caller gets its tokens.
    // The flag stays in the store: the refresher's next sync reads it again, and its probe lifts it.
    ctx.logger.warn({ provider, err }, "could not lift the provider flag; a later probe will");
  }
}

/**
 * Reports again that this process's own client credentials for `provider` are refused, if the flag's
 * last report is a minute old: its flag is re-dated once a minute, so it never goes stale while a
 * refused process runs. A flag naming other refused credentials is taken over only once their process
 * has stopped reporting it (two minutes: a live one re-dates it every minute): while it reports, the
 * flag stays theirs (a process whose credentials work again would otherwise lift it with its next
 * success).
 */
async function reportRefusal(ctx: EngineContext, provider: string): Promise<void> {
  const ours = ctx.providers.get(provider)?.clientFingerprint;
  if (ours === undefined) return;
  const now = ctx.clock.now();
  await ctx.store.reassertProviderFlag(provider, ours, now, {
    ownBeforeMs: now - REASSERT_MS,
    othersBeforeMs: now - OTHERS_SILENT_MS,
  });
}

/** reportRefusal for every provider refusing this process's client credentials (RefusalHeartbeat). */
export async function reportRefusals(ctx: EngineContext): Promise<void> {
  if (!ctx.sharedProviderState) return;
  for (const provider of [...ctx.refusedHere.keys()]) await reportRefusal(ctx, provider);
}

/**
 * Reads each provider's shared state into this process's flags (at startup and at each refresher
 * sync). A process refused itself stays flagged whatever the store says, and reports the refusal
 * again (a heartbeat, so its flag never looks stale while it runs). Otherwise a flag of other client
 * credentials that no process has reported for STALE_FLAG_MS is lifted.
 */
export async function syncProviderFlags(ctx: EngineContext): Promise<void> {
  if (!ctx.sharedProviderState) return;
  for (const [name, provider] of ctx.providers) {
    const ours = provider.clientFingerprint;
    const now = ctx.clock.now();
    if (ctx.refusedHere.has(name)) {
      await reportRefusal(ctx, name);
      continue;
    }
    const state = await ctx.store.getProviderState(name);
    // Refused while the read was on its way: that refusal is newer than what was read.
    if (ctx.refusedHere.has(name)) continue;
    if (state !== null && flagApplies(state, provider)) {
      // As of now, when this process learnt of it, on its own clock: a request sent before then proves
      // nothing about the refusal (the flag's own date may come from a clock that runs ahead, or from
      // other credentials' refusal that the flag has since passed to these).
      raiseFlag(ctx, name);
      continue;
    }
    ctx.flaggedProviders.delete(name);
    if (state?.status !== "misconfigured" || ours === undefined) continue;
    const lifted = await ctx.store.liftProviderFlag(name, {
      clientFingerprint: ours,
      nowMs: now,
      staleBeforeMs: now - STALE_FLAG_MS,
    });
    if (lifted) {
      announceLift(
        ctx,
        name,
        now,
        `lifted a provider flag of other client credentials that no process has reported refused for ${STALE_FLAG_MS / 60_000} minutes`,
      );
    }
  }
}

/** The one info line and the `provider_recovered` emission of a lift this process made. */
function announceLift(ctx: EngineContext, provider: string, atMs: number, message: string): void {
  ctx.logger.info({ provider }, message);
  ctx.events.emit("provider_recovered", { provider, atMs });
}
