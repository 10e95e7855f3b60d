import { NeedsReauthError, ProviderUnavailableError, TokenwardenError } from "../core/errors.js";
import {
  type CredentialTiming,
  DEFAULT_MIN_TTL_SECONDS,
  needsToken,
  refreshMarginMs,
} from "../core/refresh-policy.js";
import { SingleFlight } from "../core/single-flight.js";
import type { CredentialKind, CredentialRef, StoredCredential } from "../core/types.js";
import type { EngineContext } from "./context.js";
import { missingCredential } from "./missing-credential.js";
import { backoffEndsAtMs, type CurrentToken, refreshCredential } from "./refresh.js";
import { DEFAULT_CACHED_CONNECTIONS, refKey, setBounded } from "./token-cache.js";

export interface GetTokenOptions {
  /** Which credential: `bot` or `user` for Slack, `default` elsewhere. Defaults to the connection's first. */
  kind?: CredentialKind;
  /** The token must stay valid at least this long; refreshed first if it would not. */
  minTtlSeconds?: number;
}

export interface AccessToken {
  accessToken: string;
  tokenType: string;
  kind: CredentialKind;
  expiresAt: Date | null;
  /** Whose token it is (`slack`, …): a caller sending it somewhere checks it is that provider's. */
  provider: string;
}

/** Order in which a connection's credentials are picked when the caller names no kind. */
const KIND_PREFERENCE: readonly CredentialKind[] = ["bot", "default", "user"];

/** The caller's view of a token set: the secret revealed once, here. */
export function toAccessToken(
  t: { accessToken: { reveal(): string }; tokenType: string; expiresAtMs: number | null },
  kind: CredentialKind,
  provider: string,
): AccessToken {
  return {
    accessToken: t.accessToken.reveal(),
    tokenType: t.tokenType,
    kind,
    expiresAt: t.expiresAtMs === null ? null : new Date(t.expiresAtMs),
    provider,
  };
}

/**
 * getToken: memory first (no database round trip while the store's change
 * stamp is unchanged), then the store, then one refresh per credential per
 * process (coalesced), and one across processes (claimed in the store). Inside
 * the refresh margin, only the caller that sends the refresh waits for it: one
 * whose token still lasts as long as it asked is served at once while the
 * refresh is under way (here or in another process) or would not be sent now.
 */
export function makeGetToken(ctx: EngineContext) {
  const flights = new SingleFlight<CurrentToken>();
  const defaultKinds = new Map<string, CredentialKind>();

  function fromCache(ref: CredentialRef, minTtlSeconds: number | undefined): AccessToken | null {
    const entry = ctx.cache.get(ref.connectionId, ref.kind);
    if (entry === undefined || entry.stamp !== ctx.store.changeStamp(ref)) return null;
    if (entry.expiresAtMs !== null) {
      // needsToken() with the policy's margin precomputed at fill: this runs on every call.
      const wantedMs = Math.min(
        Math.max(0, minTtlSeconds ?? DEFAULT_MIN_TTL_SECONDS) * 1000,
        entry.halfLifetimeMs,
      );
      const now = ctx.clock.now();
      if (now + wantedMs >= entry.expiresAtMs) return null; // the caller cannot use it: refresh first
      // Inside the margin, load() refreshes it, unless a refresh is under way or would not be sent now
      // (known from the read this entry holds: a change to the credential drops both together).
      if (
        now + entry.marginMs >= entry.expiresAtMs &&
        !(entry.refreshDeferredUntilMs > ctx.steadyNow() || flights.has(refKey(ref)))
      ) {
        return null;
      }
    }
    return toAccessToken(entry, entry.kind, entry.provider);
  }

  async function load(ref: CredentialRef, minTtlSeconds: number | undefined): Promise<AccessToken> {
    const stamp = ctx.store.changeStamp(ref);
    const credential = await ctx.store.getCredential(ref);
    if (credential === null) throw await missingCredential(ctx, ref);
    if (credential.status === "needs_reauth") {
      throw new NeedsReauthError(
        ref.connectionId,
        credential.reason ?? "invalid_auth",
        ctx.reconnectUrl(ref.connectionId, credential.provider),
      );
    }
    const now = ctx.clock.now();
    const timing = timingOf(credential);
    const ttlSeconds = satisfiableTtlSeconds(timing, minTtlSeconds);
    if (!needsToken(timing, now, ttlSeconds, ctx.policy)) {
      remember(ref, credential, stamp, Number.NEGATIVE_INFINITY);
      return toAccessToken(credential, ref.kind, credential.provider);
    }
    // Fresh enough = what needsToken asks for, so a token another process just rotated counts as fresh.
    const freshUntilMs = now + Math.max(ttlSeconds * 1000, refreshMarginMs(timing, ctx.policy));
    const usableUntilMs = now + ttlSeconds * 1000;
    // Judged on this read alone, never on an earlier one's: the change that moved the stamp (a peer's
    // failure ending its claim, a backoff ended, a reconnect) may have ended what held the refresh back.
    const deferredUntilMs = refreshDeferredUntil(credential, now);
    if (
      credential.expiresAtMs !== null &&
      credential.expiresAtMs > usableUntilMs &&
      (flights.has(refKey(ref)) || deferredUntilMs > ctx.steadyNow())
    ) {
      // Inside its margin, yet lasting as long as this caller asked, and its refresh is another
      // caller's to wait for or would not be sent now: served at once.
      remember(ref, credential, stamp, deferredUntilMs);
      return toAccessToken(credential, ref.kind, credential.provider);
    }
    let fresh = await flights.run(refKey(ref), () =>
      refreshCredential(ctx, ref, { freshUntilMs, usableUntilMs }),
    );
    if (
      fresh.servedWhileHeld === true &&
      fresh.tokens.expiresAtMs !== null &&
      fresh.tokens.expiresAtMs < usableUntilMs
    ) {
      // This caller joined a flight that settled for a token another caller could still use (another
      // process was refreshing it) but that would not last as long as this caller asked: wait for it.
      // Never after a refresh that completed: its token is the longest the provider grants (Slack's
      // 12 h to a caller asking 24 h), and asking again would spend another refresh token for no more.
      fresh = await refreshCredential(ctx, ref, { freshUntilMs });
    }
    if (
      fresh.failure &&
      fresh.tokens.expiresAtMs !== null &&
      fresh.tokens.expiresAtMs - ctx.clock.now() < 1000
    ) {
      throw new ProviderUnavailableError(
        `could not refresh ${ref.kind} credential of ${ref.connectionId} (${fresh.failure.error})`,
        "provider_unavailable",
        null,
        { providerError: fresh.failure.error },
      );
    }
    return toAccessToken(fresh.tokens, ref.kind, fresh.provider);
  }

  /**
   * Until when (steady clock) a refresh would not be sent, by what the stored credential says (its
   * backoff, another process's claim) or this process knows of its provider (a rate-limit pause, our
   * client refused and the probe slot taken): what refreshCredential would hand back for. -Infinity
   * when it would be sent now.
   */
  function refreshDeferredUntil(credential: StoredCredential, now: number): number {
    const delayMs = Math.max(
      (backoffEndsAtMs(ctx, credential, now) ?? now) - now,
      (credential.claimUntilMs ?? 0) - ctx.leaseWindow().nowMs,
      providerHoldMs(credential.provider),
    );
    return delayMs > 0 ? ctx.steadyNow() + delayMs : Number.NEGATIVE_INFINITY;
  }

  /** How long this process holds the provider's refreshes back (refreshCredential's own checks). */
  function providerHoldMs(provider: string): number {
    const steadyMs = ctx.steadyNow();
    const pausedUntil = ctx.providerPausedUntil.get(provider)?.untilSteadyMs ?? steadyMs;
    const probeAt = ctx.flaggedProviders.has(provider)
      ? (ctx.providerProbeAtMs.get(provider) ?? steadyMs)
      : steadyMs;
    return Math.max(pausedUntil, probeAt) - steadyMs;
  }

  function remember(
    ref: CredentialRef,
    credential: StoredCredential,
    stamp: number,
    refreshDeferredUntilMs: number,
  ): void {
    const timing = timingOf(credential);
    const lifetimeMs = credential.expiresAtMs === null ? 0 : credential.expiresAtMs - credential.issuedAtMs;
    ctx.cache.set(ref, {
      accessToken: credential.accessToken,
      tokenType: credential.tokenType,
      kind: credential.kind,
      provider: credential.provider,
      expiresAtMs: credential.expiresAtMs,
      marginMs: timing.hasRefreshToken ? refreshMarginMs(timing, ctx.policy) : 0,
      halfLifetimeMs: lifetimeMs > 0 ? lifetimeMs / 2 : Number.POSITIVE_INFINITY,
      refreshDeferredUntilMs,
      stamp,
    });
  }

  /**
   * The kind a call that names none gets, read from the store: remembered only for the memory-only
   * path, which a change to the connection's credentials (a peer's re-import adding a bot, say)
   * sends back here by invalidating its cache entry.
   */
  async function resolveKind(connectionId: string): Promise<CredentialKind> {
    const connection = await ctx.store.getConnection(connectionId);
    if (connection === null) throw new TokenwardenError("not_found", `no connection ${connectionId}`);
    const kinds = new Set(connection.credentials.map((c) => c.kind));
    const kind = KIND_PREFERENCE.find((k) => kinds.has(k));
    if (kind === undefined)
      throw new TokenwardenError("not_found", `connection ${connectionId} has no credentials`);
    setBounded(defaultKinds, connectionId, kind, DEFAULT_CACHED_CONNECTIONS); // as bounded as the cache
    return kind;
  }

  /** The token when memory alone can answer; null when getToken would go to the store (or refresh). */
  function cachedToken(connectionId: string, options: GetTokenOptions = {}): AccessToken | null {
    const kind = options.kind ?? defaultKinds.get(connectionId);
    if (kind === undefined) return null;
    const hit = fromCache({ connectionId, kind }, options.minTtlSeconds);
    if (hit !== null) ctx.cache.recordHit();
    return hit;
  }

  return {
    cachedToken,
    async getToken(connectionId: string, options: GetTokenOptions = {}): Promise<AccessToken> {
      const hit = cachedToken(connectionId, options);
      if (hit !== null) return hit;
      const kind = options.kind ?? (await resolveKind(connectionId));
      ctx.cache.recordMiss();
      return load({ connectionId, kind }, options.minTtlSeconds);
    },
    forget(connectionId: string): void {
      defaultKinds.delete(connectionId);
      ctx.cache.deleteConnection(connectionId);
    },
  };
}

function timingOf(c: StoredCredential): CredentialTiming {
  return { expiresAtMs: c.expiresAtMs, issuedAtMs: c.issuedAtMs, hasRefreshToken: c.refreshToken !== null };
}

/**
 * A caller may ask for more TTL than the provider ever grants (min_ttl=3600 on
 * 10-minute tokens); capping it at half the lifetime keeps every call from
 * refreshing again.
 */
function satisfiableTtlSeconds(c: CredentialTiming, minTtlSeconds: number | undefined): number {
  const wanted = minTtlSeconds ?? DEFAULT_MIN_TTL_SECONDS;
  if (c.expiresAtMs === null || c.expiresAtMs <= c.issuedAtMs) return wanted;
  return Math.min(wanted, (c.expiresAtMs - c.issuedAtMs) / 2000);
}
