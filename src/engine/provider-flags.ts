import type { Provider } from "../core/ports.js";
import type { ProviderState } from "../core/types.js";
import type { EngineContext } from "./context.js";

/**
 * A flag of other client credentials that nobody has reported again for this long is stale: a process
 * whose credentials are refused reports again at each probe (one a minute while it has due work), so
 * after three minutes of silence none is left running, and the rollout that replaced it is over.
 */
export const STALE_FLAG_MS = 3 * 60_000;

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

/**
 * Reads each provider's shared state into this process's flags. A flag of other client credentials
 * that no process has reported for STALE_FLAG_MS is lifted, unless this warden's own credentials were
 * flagged here.
 */
export async function syncProviderFlags(ctx: EngineContext): Promise<void> {
  if (!ctx.sharedProviderState) return;
  for (const [name, provider] of ctx.providers) {
    const state = await ctx.store.getProviderState(name);
    if (flagApplies(state, provider)) {
      ctx.flaggedProviders.add(name);
      continue;
    }
    const wasFlagged = ctx.flaggedProviders.delete(name);
    const ours = provider.clientFingerprint;
    if (state?.status !== "misconfigured" || ours === undefined || wasFlagged) continue;
    const now = ctx.clock.now();
    if (await ctx.store.liftStaleProviderFlag(name, ours, now - STALE_FLAG_MS, now)) {
      ctx.logger.info(
        { provider: name },
        "lifted a provider flag of other client credentials that no process has reported refused for three minutes",
      );
    }
  }
}
