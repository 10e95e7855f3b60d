import { nextAttemptAt } from "../core/backoff.js";
import { NeedsReauthError, ProviderUnavailableError, TokenwardenError } from "../core/errors.js";
import type {
  ClaimResult,
  CompletionItem,
  Provider,
  RefreshClaim,
  RefreshOutcome,
  StatusChange,
} from "../core/ports.js";
import { jitteredRefreshDueAt } from "../core/refresh-policy.js";
import { episodeTransition } from "../core/status.js";
import type {
  Classification,
  CredentialRef,
  DeadReason,
  Reason,
  StoredCredential,
  TokenSet,
  TransientReason,
} from "../core/types.js";
import type { Completed } from "./completion-batcher.js";
import type { EngineContext } from "./context.js";
import { missingCredential } from "./missing-credential.js";
import { endOutageBackoffs } from "./outage-backoffs.js";
import { CALLER_PROBE_MS, flagProvider, holdBack, markProviderHealthy } from "./provider-flags.js";
import { pauseIfRateLimited } from "./provider-pauses.js";
import { withTimeout } from "./timeout.js";

type Claimed = Extract<ClaimResult, { kind: "claimed" }>;

/** A token a caller may use, as the store now holds it. */
export interface CurrentToken {
  ref: CredentialRef;
  provider: string;
  tokens: TokenSet;
  /** Set when a refresh was attempted and failed transiently while the stored token is still valid. */
  failure?: Classification;
  /**
   * Set when the stored token was served because it lasts as long as the caller can use
   * (`usableUntilMs`) while another process is still refreshing it: not the outcome of a refresh.
   */
  servedWhileHeld?: true;
}

export interface RefreshRequest {
  /** Succeed without spending if the stored token is valid until at least then (another process won). */
  freshUntilMs: number;
  /**
   * The caller can use any token valid until then (its own minimum, below `freshUntilMs`, which adds
   * the refresh-ahead margin). While another process holds the refresh, a stored token valid that
   * long is served at once instead of waiting for the holder (a slow or failing provider).
   */
  usableUntilMs?: number;
  /** The refresh is wanted because this token failed; if the store already holds another, use that. */
  staleAccessToken?: string;
  /**
   * Ignore the backoff schedule (an explicit "refresh now"): the backoff found when the request
   * began, not one a holder it waited for has just recorded (that holder's attempt is this one's).
   */
  ignoreBackoff?: boolean;
}

export function providerFor(ctx: EngineContext, name: string): Provider {
  const provider = ctx.providers.get(name);
  if (!provider) {
    throw new TokenwardenError(
      "provider_misconfigured",
      `provider "${name}" is not configured in this warden`,
    );
  }
  return provider;
}

function current(credential: StoredCredential): CurrentToken {
  return {
    ref: { connectionId: credential.connectionId, kind: credential.kind },
    provider: credential.provider,
    tokens: {
      accessToken: credential.accessToken,
      refreshToken: credential.refreshToken,
      tokenType: credential.tokenType,
      expiresAtMs: credential.expiresAtMs,
      scopes: credential.scopes,
    },
  };
}

function deadError(ctx: EngineContext, credential: StoredCredential): NeedsReauthError {
  return new NeedsReauthError(
    credential.connectionId,
    credential.reason ?? "invalid_auth",
    ctx.reconnectUrl(credential.connectionId, credential.provider),
  );
}

/**
 * Refreshes one credential at most once across every process sharing the
 * store (invariant 1). Claims the right to spend the refresh token; if another
 * process holds it, waits and re-reads instead of spending it too.
 */
export async function refreshCredential(
  ctx: EngineContext,
  ref: CredentialRef,
  request: RefreshRequest,
): Promise<CurrentToken> {
  // Time actually waited, on the monotonic clock: a wall clock stepped back must not stretch the wait.
  const deadline = performance.now() + ctx.timings.waitTimeoutMs;
  // Failures recorded before this request began; one recorded later (by a holder this request
  // waited for) is the forced attempt already made, and is honoured rather than sent again.
  let failuresAtStart: number | null = null;
  for (;;) {
    let takenAt = performance.now(); // a lease won here began before the round trip that won it
    const claim = await ctx.store.claimRefresh(ref, {
      owner: ctx.owner,
      ...ctx.leaseWindow(),
      freshUntilMs: request.freshUntilMs,
    });
    switch (claim.kind) {
      case "not_found":
        throw await missingCredential(ctx, ref);
      case "already_fresh":
        return current(claim.credential);
      case "not_refreshable":
        return usableOrThrow(ctx, claim.credential);
      case "held_by_other": {
        failuresAtStart ??= claim.failureCount;
        const usable = await usableWhileHeld(ctx, ref, request);
        if (usable) return usable;
        await waitForHolder(ctx, ref, claim, deadline);
        continue;
      }
      case "claimed": {
        failuresAtStart ??= claim.credential.failureCount;
        const ignoreBackoff =
          request.ignoreBackoff === true && claim.credential.failureCount === failuresAtStart;
        const early = await settleWithoutSpending(ctx, claim, { ...request, ignoreBackoff });
        if (early) return early;
        // Taking the claim may have waited (a pool, a row lock) until its lease is near its end or
        // past it, when another process may take it over and send the same token: renew it before
        // the token leaves. Not ours any more: someone else sends; wait for them as any waiter does.
        if (performance.now() - takenAt >= ctx.timings.leaseMs / 3) {
          const renewedAt = performance.now();
          let held: boolean;
          try {
            const lease = ctx.leaseWindow();
            held = await ctx.store.renewClaim(claim.claim, lease.nowMs, lease.leaseMs);
          } catch (error) {
            await handBack(ctx, claim.claim); // nothing was sent
            throw error;
          }
          if (!held) continue;
          takenAt = renewedAt;
        }
        try {
          return await runClaim(ctx, claim, undefined, takenAt);
        } catch (error) {
          if (error instanceof ClaimLost) continue; // the store has a newer word: start over from it
          throw error;
        }
      }
    }
  }
}

/**
 * Takes a credential's refresh claim, waiting for any other process's refresh to finish first, so
 * nothing can mint tokens from it while it is held (a revocation before a delete: a refresh answered
 * in between would leave tokens the delete never revoked); `letGo` stops renewing it, and one not
 * deleted with its row must be handed back (`handBack`). Null when there is nothing to hold: the
 * credential is gone, dead or has no refresh token (no refresh can be in flight).
 */
export async function quietCredential(
  ctx: EngineContext,
  ref: CredentialRef,
): Promise<{ claim: RefreshClaim; letGo: () => void } | null> {
  const deadline = performance.now() + ctx.timings.waitTimeoutMs; // monotonic, as refreshCredential's
  for (;;) {
    const takenAt = performance.now();
    const claim = await ctx.store.claimRefresh(ref, {
      owner: ctx.owner,
      ...ctx.leaseWindow(),
      freshUntilMs: Number.MAX_SAFE_INTEGER,
      sends: false,
    });
    switch (claim.kind) {
      case "claimed":
        return { claim: claim.claim, letGo: ctx.claims.hold(claim.claim, takenAt) };
      case "held_by_other":
        await waitForHolder(ctx, ref, claim, deadline);
        continue;
      default:
        return null;
    }
  }
}

/** The stored token, if it is what the caller can use while another process refreshes it. */
async function usableWhileHeld(
  ctx: EngineContext,
  ref: CredentialRef,
  request: RefreshRequest,
): Promise<CurrentToken | null> {
  if (request.usableUntilMs === undefined) return null;
  const stored = await ctx.store.getCredential(ref);
  if (stored === null || stored.status === "needs_reauth") return null;
  if (stored.expiresAtMs !== null && stored.expiresAtMs < request.usableUntilMs) return null;
  return { ...current(stored), servedWhileHeld: true };
}

/** Without a refresh token (or dead), the stored token is all there is. */
function usableOrThrow(ctx: EngineContext, credential: StoredCredential): CurrentToken {
  if (credential.status === "needs_reauth") throw deadError(ctx, credential);
  if (credential.expiresAtMs !== null && credential.expiresAtMs <= ctx.clock.now()) {
    throw new NeedsReauthError(
      credential.connectionId,
      "invalid_auth",
      ctx.reconnectUrl(credential.connectionId, credential.provider),
    );
  }
  return current(credential);
}

/**
 * handBackServing for a transient failure that ends at a known time (a rate-limit pause, a backoff):
 * once the token has expired, `provider_unavailable` with `reason` says why and when to come back.
 */
function handBackUntil(
  ctx: EngineContext,
  claimed: Claimed,
  now: number,
  failure: { reason: TransientReason; error: string; retryAfterMs: number },
  why: string,
  reason: Reason,
): Promise<CurrentToken> {
  const { retryAfterMs } = failure;
  return handBackServing(
    ctx,
    claimed,
    now,
    { kind: "transient", ...failure },
    () =>
      new ProviderUnavailableError(
        `${why}; next attempt in ${Math.ceil(retryAfterMs / 1000)} s`,
        reason,
        retryAfterMs,
        { providerError: failure.error },
      ),
  );
}

/**
 * Hands a claim back unspent and answers the caller: the stored token while it is still valid, with
 * `failure` said (a caller whose token the provider has just refused, withToken's, must not take it
 * as a fresh one); once it has expired, the error `expired` makes.
 */
async function handBackServing(
  ctx: EngineContext,
  claimed: Claimed,
  now: number,
  failure: Classification,
  expired: () => Error,
): Promise<CurrentToken> {
  await handBack(ctx, claimed.claim);
  const c = claimed.credential;
  if (c.expiresAtMs === null || c.expiresAtMs > now) return { ...current(c), failure };
  throw expired();
}

/**
 * A back-off left by another client's refusal (a warden running another app's credentials got
 * `client_id_mismatch` on this credential) when this warden is the client the tokens belong to:
 * it does not hold this warden back, which can refresh them.
 */
function backoffIsAnotherClients(ctx: EngineContext, c: StoredCredential): boolean {
  return (
    c.reason === "provider_misconfigured" &&
    ctx.providers.get(c.provider)?.issuedToThisClient?.(c.providerData) === true
  );
}

/** When the credential's backoff lets this warden refresh it again (wall clock); null when it may now. */
export function backoffEndsAtMs(ctx: EngineContext, c: StoredCredential, now: number): number | null {
  if (c.nextAttemptAtMs === null || c.nextAttemptAtMs <= now || backoffIsAnotherClients(ctx, c)) return null;
  return c.nextAttemptAtMs;
}

/**
 * A claim was won, but spending may still be wrong: the token that failed was
 * already replaced by another process, or the credential is in backoff.
 * Releases the claim in those cases.
 */
async function settleWithoutSpending(
  ctx: EngineContext,
  claimed: Claimed,
  request: RefreshRequest,
): Promise<CurrentToken | null> {
  const c = claimed.credential;
  if (request.staleAccessToken !== undefined && c.accessToken.reveal() !== request.staleAccessToken) {
    await handBack(ctx, claimed.claim);
    return current(c);
  }
  const now = ctx.clock.now();
  const steadyMs = ctx.steadyNow();
  // Our client credentials were refused: every refresh would be refused too, and hammering the token
  // endpoint earns a rate limit. One caller per process gets through as a probe every 10 s (a fixed
  // secret is then noticed at once); the others keep a still-valid token or hear why not.
  if (
    ctx.flaggedProviders.has(c.provider) &&
    steadyMs < (ctx.providerProbeAtMs.get(c.provider) ?? Number.NEGATIVE_INFINITY)
  ) {
    const failure: Classification = {
      kind: "misconfigured",
      reason: "provider_misconfigured",
      error: "client credentials refused",
    };
    return handBackServing(ctx, claimed, now, failure, () =>
      misconfiguredError(c.provider, "rejected our client credentials"),
    );
  }
  const paused = ctx.providerPausedUntil.get(c.provider);
  if (paused !== undefined && steadyMs < paused.untilSteadyMs) {
    // The provider limits the token endpoint per app: another credential's refresh now would only be
    // refused too (and may extend the limit). Even a forced refresh waits; nothing is recorded on
    // this credential, which did nothing wrong.
    return handBackUntil(
      ctx,
      claimed,
      now,
      {
        reason: "rate_limited",
        error: paused.error,
        retryAfterMs: Math.ceil(paused.untilSteadyMs - steadyMs),
      },
      `${c.provider} is rate limiting refreshes (${paused.error})`,
      "rate_limited",
    );
  }
  const backoffEndsAt = request.ignoreBackoff ? null : backoffEndsAtMs(ctx, c, now);
  if (backoffEndsAt !== null) {
    return handBackUntil(
      ctx,
      claimed,
      now,
      {
        reason: c.reason === "rate_limited" ? "rate_limited" : "provider_unavailable",
        error: c.lastError ?? "unknown",
        retryAfterMs: backoffEndsAt - now,
      },
      `refreshing ${c.kind} credential of ${c.connectionId} failed recently (${c.lastError ?? "unknown"})`,
      c.reason ?? "provider_unavailable",
    );
  }
  // This caller sends: it is the probe. Taken only here, so a caller handed back above (in backoff,
  // or paused) does not use up the slot of one that would have probed.
  if (ctx.flaggedProviders.has(c.provider)) ctx.providerProbeAtMs.set(c.provider, steadyMs + CALLER_PROBE_MS);
  return null;
}

async function waitForHolder(
  ctx: EngineContext,
  ref: CredentialRef,
  held: { untilMs: number; version: number; failureCount: number },
  deadline: number,
): Promise<void> {
  // Polls back off (×1.5 up to 250 ms): a slow provider should not turn waiters into a load on the store.
  let delayMs = ctx.timings.pollMs;
  while (performance.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    delayMs = Math.min(250, Math.ceil(delayMs * 1.5));
    const c = await ctx.store.getCredential(ref);
    // The holder finished (a new version, a recorded failure, a status change): look again.
    if (c === null || c.version !== held.version || c.failureCount !== held.failureCount) return;
    if (c.status === "needs_reauth" || c.claimUntilMs === null) return; // released
    // A live holder keeps renewing its lease; only one that stopped (it died) lets it lapse, and then
    // the caller's loop takes the claim over with `previousAttemptLost`. Until then, reads only.
    if (ctx.leaseWindow().nowMs >= held.untilMs) return;
  }
  throw new ProviderUnavailableError(
    `a refresh of ${ref.kind} credential of ${ref.connectionId} is still in progress in another process`,
    "provider_unavailable",
    null,
  );
}

/**
 * Spends a claimed refresh token once and records the outcome. Persist before
 * use (invariant 2): the new tokens are committed before anyone sees them.
 * The claim is renewed while the provider is slow, so a slow provider never
 * lets another process spend the same token.
 */
export async function runClaim(
  ctx: EngineContext,
  claimed: Claimed,
  onProviderAnswered?: (outcome: RefreshOutcome | undefined) => void,
  claimTakenAtMs: number = performance.now(),
): Promise<CurrentToken> {
  const { claim, credential, previousAttemptLost } = claimed;
  let provider: Provider;
  try {
    provider = providerFor(ctx, credential.provider);
  } catch (error) {
    // Not configured here (a CLI without the client secret, say): nothing was sent, so the journal
    // the claim opened must close, or a later refusal would read as a lost response.
    await handBack(ctx, claim);
    throw error;
  }
  const refreshToken = credential.refreshToken;
  if (refreshToken === null) {
    await handBack(ctx, claim);
    return usableOrThrow(ctx, credential);
  }
  // Held until the outcome is stored, not merely until the provider answers: a commit that waits
  // (a busy store, a full batch ahead of it) must not let the lease lapse on a spent refresh token.
  const letGo = ctx.claims.hold(claim, claimTakenAtMs);
  try {
    let outcome: RefreshOutcome | undefined;
    const startedAt = performance.now(); // latency is measured, not decided on: the wall clock is right here
    const sentAtMs = ctx.clock.now();
    const sentSteadyMs = ctx.steadyNow();
    try {
      outcome = await withTimeout(ctx.timings.providerTimeoutMs, (signal) =>
        provider.refresh(
          {
            ref: claim.ref,
            refreshToken,
            tokenType: credential.tokenType,
            scopes: credential.scopes,
            providerData: credential.providerData,
          },
          signal,
        ),
      );
    } finally {
      // Before the caller hears of it: the refresher starts its next call as soon as a slot frees.
      pauseIfRateLimited(ctx, credential.provider, outcome);
      holdBackIfRefused(ctx, credential.provider, outcome);
      onProviderAnswered?.(outcome);
    }
    observe(ctx, credential, outcome, performance.now() - startedAt);
    if (outcome.kind === "refreshed")
      return await completeClaim(ctx, claim, credential, outcome, previousAttemptLost, {
        sentAtMs,
        sentSteadyMs,
      });
    return await failClaim(ctx, claim, credential, outcome.classification, {
      inDoubt: outcome.mayHaveReachedProvider,
      previousAttemptLost,
      sentAtMs,
      sentSteadyMs,
    });
  } finally {
    letGo();
  }
}

/**
 * Our client credentials were refused: this process holds back at once, before the slot this call
 * held starts the next claim (flagProvider records and announces it a moment later, after the hand-back).
 */
function holdBackIfRefused(ctx: EngineContext, provider: string, outcome: RefreshOutcome | undefined): void {
  if (outcome?.kind !== "failed") return;
  const c = outcome.classification;
  if (c.kind !== "misconfigured" || c.scope === "credential") return;
  holdBack(ctx, provider);
}

function observe(
  ctx: EngineContext,
  credential: StoredCredential,
  outcome: Awaited<ReturnType<Provider["refresh"]>>,
  durationMs: number,
): void {
  if (ctx.onRefresh === undefined) return;
  try {
    ctx.onRefresh({
      provider: credential.provider,
      kind: credential.kind,
      outcome: outcome.kind === "refreshed" ? "refreshed" : outcome.classification.kind,
      durationMs,
    });
  } catch (error) {
    ctx.logger.warn({ err: error }, "an onRefresh observer threw");
  }
}

async function completeClaim(
  ctx: EngineContext,
  claim: RefreshClaim,
  credential: StoredCredential,
  outcome: Extract<Awaited<ReturnType<Provider["refresh"]>>, { kind: "refreshed" }>,
  previousAttemptLost: boolean,
  /** When the request went out: `sentAtMs` is the new tokens' issue time (see CompletionItem.nowMs). */
  { sentAtMs, sentSteadyMs }: { sentAtMs: number; sentSteadyMs: number },
): Promise<CurrentToken> {
  const now = ctx.clock.now();
  const tokens = outcome.tokens;
  const hasRefreshToken = tokens.refreshToken !== null || credential.refreshToken !== null;
  // From the answer's arrival, not the send: the policy's floor keeps a token just stored from being
  // due at once, and a late answer (a slow provider, short-lived tokens) would otherwise be.
  const refreshDueAtMs = jitteredRefreshDueAt(
    { expiresAtMs: tokens.expiresAtMs, issuedAtMs: now, hasRefreshToken },
    ctx.random.next(),
    ctx.policy,
    ctx.timings.jitterFraction,
  );
  const item: CompletionItem = {
    claim,
    result: { tokens, providerData: outcome.providerData, refreshDueAtMs },
    nowMs: sentAtMs,
    event: {
      connectionId: claim.ref.connectionId,
      kind: claim.ref.kind,
      type: "refreshed",
      atMs: now,
      data: {
        expiresAtMs: tokens.expiresAtMs,
        refreshTokenRotated: tokens.refreshToken !== null,
        ...(previousAttemptLost ? { recoveredLostResponse: true } : {}),
      },
    },
  };
  const saved = await storeCompletion(ctx, item);
  if (saved.kind === "fenced") {
    const latest = await ctx.store.getCredential(claim.ref);
    // An earlier try of this write may have committed and lost only its answer: then these are ours.
    if (latest === null || latest.accessToken.reveal() !== tokens.accessToken.reveal()) {
      // Our claim was cleared (a reconnect, an uninstall, a delete) or taken over after its lease
      // lapsed: whoever did that has the newer word.
      ctx.logger.warn(
        { connectionId: claim.ref.connectionId, kind: claim.ref.kind },
        "a refresh completed after its claim was taken away; its tokens were not stored",
      );
      throw new ClaimLost();
    }
  }
  ctx.cache.delete(claim.ref);
  ctx.events.emit("refreshed", {
    connectionId: claim.ref.connectionId,
    provider: credential.provider,
    kind: claim.ref.kind,
    expiresAt: tokens.expiresAtMs === null ? null : new Date(tokens.expiresAtMs),
    atMs: now,
  });
  // The change the commit made, computed under its lock: once per episode, however many credentials
  // of the connection recover at once, in this process or others.
  if (saved.kind === "stored") {
    announce(ctx, claim.ref.connectionId, credential.provider, claim.ref.kind, saved.change, now);
    if (credential.status === "refresh_failing" && credential.reason === "provider_unavailable") {
      endOutageBackoffs(ctx, credential.provider);
    }
  }
  await markProviderHealthy(ctx, credential.provider, now, sentSteadyMs);
  return {
    ref: claim.ref,
    provider: credential.provider,
    tokens: { ...tokens, refreshToken: tokens.refreshToken ?? credential.refreshToken },
  };
}

/**
 * A refresh's outcome was fenced out: its claim was cleared or taken over while the provider call was
 * in flight (a reconnect, an uninstall, a delete, or a peer that took over a lapsed lease). Its
 * caller must not be answered from what the claim saw (a replaced token, a verdict about it):
 * `refreshCredential` starts over from the store, which has the newer word.
 */
export class ClaimLost extends Error {
  constructor() {
    super("the refresh claim was taken away before its outcome was recorded");
  }
}

/** Waits before each retry of a failed write: refreshed tokens (the claim held meanwhile) or a claim handed back. */
const STORE_RETRY_DELAYS_MS = [100, 500, 2_000];

/**
 * Hands a claim back unspent. The caller has its answer already, so a failed write does not fail it:
 * the release is retried in the background (the delays of a completion's retries), and if every try
 * fails the claim lapses at the end of its lease. It is no longer renewed, and `close()` waits for the
 * hand-back (ClaimKeeper.handingBack). Until it is released the journal it opened reads "in doubt",
 * and the next attempt would call a refused refresh token `refresh_response_lost`.
 */
export async function handBack(ctx: EngineContext, claim: RefreshClaim): Promise<void> {
  const where = { connectionId: claim.ref.connectionId, kind: claim.ref.kind };
  const done = ctx.claims.handingBack(claim);
  const attempt = async (retry: number): Promise<void> => {
    try {
      await ctx.store.releaseClaim(claim);
    } catch (error) {
      const delayMs = STORE_RETRY_DELAYS_MS[retry];
      if (delayMs !== undefined) {
        ctx.logger.warn(
          { ...where, err: error, retryInMs: delayMs },
          "could not hand back a claim; retrying",
        );
        setTimeout(() => void attempt(retry + 1), delayMs).unref();
        return;
      }
      ctx.logger.warn(
        { ...where, err: error },
        "could not hand back a claim; it lapses at the end of its lease",
      );
    }
    done();
  };
  await attempt(0);
}

/**
 * Stores a refresh's new tokens, retrying a failed write while the claim is held: the old refresh
 * token is spent, so these tokens are the connection's life. If every try fails, the error goes
 * to the caller and the journal stays open; the next attempt presents the old refresh token again,
 * which Slack honours for a short grace period after its use.
 */
async function storeCompletion(ctx: EngineContext, item: CompletionItem): Promise<Completed> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.completions.complete(item);
    } catch (error) {
      // The store refused this item's content (it says so up front, leaving its batch alone): a retry
      // would be refused the same.
      const refused = error instanceof TokenwardenError && error.code === "invalid_input";
      const delayMs = refused ? undefined : STORE_RETRY_DELAYS_MS[attempt];
      const where = { err: error, connectionId: item.claim.ref.connectionId, kind: item.claim.ref.kind };
      if (delayMs === undefined) {
        ctx.logger.error(
          where,
          "could not store refreshed tokens; the next attempt presents the old refresh token again",
        );
        throw error;
      }
      ctx.logger.warn({ ...where, retryInMs: delayMs }, "could not store refreshed tokens; retrying");
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

async function failClaim(
  ctx: EngineContext,
  claim: RefreshClaim,
  credential: StoredCredential,
  classification: Classification,
  attempt: { inDoubt: boolean; previousAttemptLost: boolean; sentAtMs: number; sentSteadyMs: number },
): Promise<CurrentToken> {
  const now = ctx.clock.now();
  const base = { connectionId: claim.ref.connectionId, kind: claim.ref.kind, atMs: now };
  if (classification.kind === "misconfigured" && classification.scope !== "credential") {
    // Our client credentials are wrong: the refresh token was not spent, so the connection is untouched.
    await handBack(ctx, claim);
    await flagProvider(ctx, credential.provider, classification.error, now, attempt.sentAtMs);
    // As with an outage: a token that still works is still served while the secret gets fixed.
    if (credential.expiresAtMs === null || credential.expiresAtMs > now) {
      return { ...current(credential), failure: classification };
    }
    throw misconfiguredError(
      credential.provider,
      `rejected our client credentials (${classification.error})`,
    );
  }
  if (classification.kind === "dead") {
    // Slack checks the client id and secret before the refresh token (§3.7), so a flagged provider's
    // probe answered invalid_refresh_token says our client credentials work.
    if (classification.error === "invalid_refresh_token") {
      await markProviderHealthy(ctx, credential.provider, now, attempt.sentSteadyMs);
    }
    const reason: DeadReason =
      attempt.previousAttemptLost && classification.reason === "invalid_refresh_token"
        ? "refresh_response_lost"
        : classification.reason;
    const change = await ctx.store.failRefresh(
      claim,
      {
        status: "needs_reauth",
        reason,
        lastError: classification.error,
        nextAttemptAtMs: null,
        inDoubt: false,
      },
      now,
      { ...base, type: "refresh_failed", reason, data: { error: classification.error } },
    );
    // Not recorded: the verdict is about a token the store no longer holds (a reconnect replaced it).
    if (change === null) throw new ClaimLost();
    ctx.cache.delete(claim.ref);
    ctx.logger.error(
      { connectionId: claim.ref.connectionId, kind: claim.ref.kind, reason, error: classification.error },
      "refresh refused: the credential is dead until someone reconnects",
    );
    tellFailure(
      ctx,
      claim.ref,
      credential.provider,
      change,
      { reason, error: classification.error, retryAt: null },
      now,
    );
    throw new NeedsReauthError(
      claim.ref.connectionId,
      reason,
      ctx.reconnectUrl(claim.ref.connectionId, credential.provider),
    );
  }
  // Transient, a credential issued to another client, and anything unexpected: back off, never
  // declare the connection dead (invariant 4).
  // Another client's credential: Slack accepted our client id and secret (it checks them before the
  // token), so a flag on the provider (a probe landing here) is lifted.
  if (classification.kind === "misconfigured") {
    await markProviderHealthy(ctx, credential.provider, now, attempt.sentSteadyMs);
  }
  const reason =
    classification.kind === "transient" || classification.kind === "misconfigured"
      ? classification.reason
      : "provider_unavailable";
  const retryAfterMs = classification.kind === "transient" ? classification.retryAfterMs : undefined;
  // The old refresh token's fate stays unknown until a definite answer about it arrives.
  const inDoubt = attempt.inDoubt || attempt.previousAttemptLost;
  const nextAttemptAtMs = nextAttemptAt({
    failureCount: credential.failureCount + 1,
    nowMs: now,
    random01: ctx.random.next(),
    baseMs: ctx.timings.backoffBaseMs,
    maxMs:
      inDoubt && credential.failureCount < IN_DOUBT_PROMPT_RETRIES
        ? Math.min(ctx.timings.backoffMaxMs, IN_DOUBT_BACKOFF_MAX_MS)
        : ctx.timings.backoffMaxMs,
    expiresAtMs: credential.expiresAtMs,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });
  const attemptNo = credential.failureCount + 1;
  const change = await ctx.store.failRefresh(
    claim,
    {
      status: "refresh_failing",
      reason,
      lastError: classification.error,
      nextAttemptAtMs,
      inDoubt,
    },
    now,
    {
      ...base,
      type: "refresh_failed",
      reason,
      data: { error: classification.error, nextAttemptAtMs, attempt: attemptNo },
    },
  );
  // Not recorded: what this claim saw is no longer the store's (and its token may not be either).
  if (change === null) throw new ClaimLost();
  // A warning on the 1st, 2nd, 4th, 8th… failure in a row, as the webhook is sent: an outage retries
  // every credential for hours, and a warning per attempt buries what else the log says.
  const level = Number.isInteger(Math.log2(attemptNo)) ? "warn" : "debug";
  ctx.logger[level](
    {
      connectionId: claim.ref.connectionId,
      kind: claim.ref.kind,
      reason,
      error: classification.error,
      attempt: attemptNo,
      nextAttemptAtMs,
    },
    "refresh failed; will retry",
  );
  const retryAt = new Date(nextAttemptAtMs);
  tellFailure(
    ctx,
    claim.ref,
    credential.provider,
    change,
    { reason, error: classification.error, retryAt },
    now,
  );
  if (credential.expiresAtMs === null || credential.expiresAtMs > now) {
    // The current access token still works: a refresh-ahead blip must not fail the caller.
    return { ...current(credential), failure: classification };
  }
  throw new ProviderUnavailableError(
    `refreshing ${claim.ref.kind} credential of ${claim.ref.connectionId} failed (${classification.error}); will retry`,
    reason,
    nextAttemptAtMs - now,
    { providerError: classification.error },
  );
}

/**
 * The backoff ceiling while a refresh token's fate is unknown (an answer lost, a timeout, a holder
 * that died). Slack honours a used refresh token only for a short grace period (minutes, §3.4), so a
 * doubling backoff after a lost answer let a run of transient failures outlast it, and the
 * connection died of `refresh_response_lost` that a prompt retry would have saved.
 */
const IN_DOUBT_BACKOFF_MAX_MS = 15_000;
/**
 * How many failures in a row keep that ceiling: about two minutes of attempts, the grace period's
 * length. A 5xx leaves the token in doubt too, and an outage must not turn every connection into a
 * retry every 15 s for as long as it lasts; past the grace period the usual doubling resumes.
 */
const IN_DOUBT_PROMPT_RETRIES = 6;

function misconfiguredError(provider: string, what: string): TokenwardenError {
  return new TokenwardenError(
    "provider_misconfigured",
    `provider "${provider}" ${what}; fix its client id/secret (tokenwarden diagnose app)`,
  );
}

/** Emits `refresh_failed`, then the episode change it may have caused, in this process. */
function tellFailure(
  ctx: EngineContext,
  ref: CredentialRef,
  provider: string,
  change: StatusChange | null,
  failure: { reason: Reason; error: string; retryAt: Date | null },
  atMs: number,
): void {
  ctx.events.emit("refresh_failed", {
    connectionId: ref.connectionId,
    kind: ref.kind,
    provider,
    atMs,
    ...failure,
  });
  announce(ctx, ref.connectionId, provider, ref.kind, change, atMs);
}

/**
 * Emits `needs_reauth` / `recovered` in this process, once per episode. The
 * store already recorded the episode's event in the transaction that changed
 * the status, so the event log and webhooks never depend on this process surviving.
 * Each is logged here too, whatever found it (a refresh, a health check, a
 * proxied call, a Slack event, a reconnect): the log must tell what the webhooks do.
 */
export function announce(
  ctx: EngineContext,
  connectionId: string,
  provider: string,
  kind: StoredCredential["kind"] | null,
  change: StatusChange | null,
  atMs: number,
): void {
  if (change === null) return;
  const transition = episodeTransition(change.before, change.after);
  if (transition === "needs_reauth") {
    const reason = change.reason ?? "invalid_auth";
    ctx.logger.warn(
      { connectionId, provider, kind, reason },
      "connection needs re-authorization: a person must reconnect it",
    );
    ctx.events.emit("needs_reauth", {
      connectionId,
      provider,
      kind,
      reason,
      reconnectUrl: ctx.reconnectUrl(connectionId, provider),
      atMs,
    });
  } else if (transition === "recovered") {
    ctx.logger.info({ connectionId, provider, kind, before: change.before }, "connection recovered");
    ctx.events.emit("recovered", { connectionId, provider, kind, atMs });
  }
}
