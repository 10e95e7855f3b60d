/**
 * When to refresh a credential (DESIGN.md invariant 3: refresh ahead, never only
 * after the first `token_expired`). Pure: every instant is a parameter.
 */

/** How far before expiry a token counts as due. */
export interface RefreshPolicy {
  /** Fraction of the token's lifetime (expiresAt − issuedAt) kept as margin. */
  marginFraction: number;
  /** The margin is never smaller than this, so short-lived tokens still get time to refresh. */
  minMarginMs: number;
  /** Optional cap, so very long-lived tokens are not refreshed days early. */
  maxMarginMs?: number;
}

/** What the policy needs to know about a credential. */
export interface CredentialTiming {
  /** null: the token never expires (Slack without rotation). */
  expiresAtMs: number | null;
  /** When the current access token was obtained. */
  issuedAtMs: number;
  hasRefreshToken: boolean;
}

/**
 * Refresh when less than max(5 min, 1/6 of the lifetime) remains. For Slack's
 * 12 h rotating tokens (`expires_in: 43200`, slack-api.md §3.2) that is exactly
 * 2 h, the window all three Slack SDKs use (node `EXPIRY_WINDOW = 7200`, python
 * `minutes_before_expiration=120`, java `DEFAULT_MILLISECONDS_BEFORE_EXPIRATION`
 * = 2 h; slack-api.md §7.1, §7.3, §7.4, §7.5). For a 1 h RFC 6749 token it is 10 min.
 */
export const DEFAULT_REFRESH_POLICY: Readonly<RefreshPolicy> = Object.freeze({
  marginFraction: 1 / 6,
  minMarginMs: 5 * 60_000,
});

/**
 * What `getToken` guarantees when the caller names no `minTtlSeconds`: one API
 * call plus clock skew between us and the provider.
 */
export const DEFAULT_MIN_TTL_SECONDS = 60;

/**
 * Longer than any access token lives (Slack's: 12 h). A provider's larger `expires_in` is read as
 * this, so an expiry stays an instant the stores can keep; imports are held to it too.
 */
export const MAX_TOKEN_LIFETIME_SECONDS = 10 * 365 * 86_400;

/**
 * When a token that lives `expiresInSeconds` from `fromMs` expires: a whole millisecond (the stores
 * keep integers; a fractional `expires_in` or clock would make the rotated pair unstorable), never
 * later than the longest lifetime allows.
 */
export function expiryAfter(fromMs: number, expiresInSeconds: number): number {
  return Math.floor(fromMs + Math.min(expiresInSeconds, MAX_TOKEN_LIFETIME_SECONDS) * 1000);
}

/**
 * The background refresher spreads due times over this fraction of the margin
 * (see {@link withJitter}), so tokens imported together do not all refresh at the
 * same instant; the rest of the margin is left for retries.
 */
export const DEFAULT_JITTER_FRACTION = 0.25;

/**
 * The refresh margin of a credential in ms: max(minMarginMs, lifetime × marginFraction),
 * capped by maxMarginMs, and never more than half the lifetime, so a token that
 * was just issued is never already due (a provider handing out 2-minute tokens
 * would otherwise make the refresher loop).
 *
 * @example
 * refreshMarginMs({ expiresAtMs: 43_200_000, issuedAtMs: 0, hasRefreshToken: true }, DEFAULT_REFRESH_POLICY);
 * // 7_200_000 (2 h)
 */
export function refreshMarginMs(c: CredentialTiming, p: RefreshPolicy): number {
  if (c.expiresAtMs === null) return 0;
  const lifetimeMs = Math.max(0, c.expiresAtMs - c.issuedAtMs);
  let marginMs = Math.max(p.minMarginMs, lifetimeMs * p.marginFraction);
  if (p.maxMarginMs !== undefined) marginMs = Math.min(marginMs, Math.max(p.maxMarginMs, 0));
  // A lifetime of 0 (an imported token already past expiry, or unknown issue time) keeps the full margin.
  if (lifetimeMs > 0) marginMs = Math.min(marginMs, lifetimeMs / 2);
  return Math.floor(marginMs);
}

/**
 * When the refresher should refresh this credential; null when it never has to
 * (no expiry, or no refresh token to spend).
 *
 * @example
 * refreshDueAt({ expiresAtMs: 43_200_000, issuedAtMs: 0, hasRefreshToken: true }, DEFAULT_REFRESH_POLICY);
 * // 36_000_000 (10 h after issue, 2 h before expiry)
 */
export function refreshDueAt(c: CredentialTiming, p: RefreshPolicy = DEFAULT_REFRESH_POLICY): number | null {
  if (c.expiresAtMs === null || !c.hasRefreshToken) return null;
  return c.expiresAtMs - refreshMarginMs(c, p);
}

/**
 * True when the refresher should refresh the credential now.
 *
 * @example
 * isDue({ expiresAtMs: 43_200_000, issuedAtMs: 0, hasRefreshToken: true }, 36_000_000); // true
 */
export function isDue(
  c: CredentialTiming,
  nowMs: number,
  p: RefreshPolicy = DEFAULT_REFRESH_POLICY,
): boolean {
  const due = refreshDueAt(c, p);
  return due !== null && nowMs >= due;
}

/**
 * The on-demand decision of `getToken`: true when the stored access token would
 * expire within max(minTtlSeconds, refresh margin). Without a refresh token the
 * margin does not count (nothing better can be had), only the caller's minimum
 * TTL does; the engine then reports the token as unusable rather than refreshing.
 * A token without expiry never needs a refresh.
 *
 * NOTE: a caller asking for more TTL than the provider ever grants gets `true`
 * even right after a refresh; the engine should serve the fresh token then, not loop.
 *
 * @example
 * const c = { expiresAtMs: 43_200_000, issuedAtMs: 0, hasRefreshToken: true };
 * needsToken(c, 30_000_000, 60); // false: 3.3 h left, margin 2 h
 * needsToken(c, 37_000_000, 60); // true: inside the 2 h margin
 */
export function needsToken(
  c: CredentialTiming,
  nowMs: number,
  minTtlSeconds: number = DEFAULT_MIN_TTL_SECONDS,
  p: RefreshPolicy = DEFAULT_REFRESH_POLICY,
): boolean {
  if (c.expiresAtMs === null) return false;
  const marginMs = c.hasRefreshToken ? refreshMarginMs(c, p) : 0;
  const neededMs = Math.max(Math.max(0, minTtlSeconds) * 1000, marginMs);
  return nowMs + neededMs >= c.expiresAtMs;
}

/**
 * Moves a due time earlier by up to `windowMs`, by a random amount, so refreshes
 * of many credentials do not stampede the provider at once. Only ever earlier:
 * the result is never after `dueAtMs`, hence never past expiry.
 *
 * @param random01 a float in [0, 1) from the injected `Random`
 * @example
 * withJitter(36_000_000, 1_800_000, 0.5); // 35_100_000
 */
export function withJitter(dueAtMs: number, windowMs: number, random01: number): number {
  const r = Number.isFinite(random01) ? Math.min(Math.max(random01, 0), 1) : 0;
  const w = Number.isFinite(windowMs) ? Math.max(windowMs, 0) : 0;
  return dueAtMs - Math.floor(r * w);
}

/**
 * The due time the refresher stores: {@link refreshDueAt} jittered over
 * `jitterFraction` of the margin. null when the credential never needs a refresh.
 *
 * @example
 * jitteredRefreshDueAt({ expiresAtMs: 43_200_000, issuedAtMs: 0, hasRefreshToken: true }, 0.5);
 * // 35_100_000: between 2 h and 2.5 h before expiry
 */
export function jitteredRefreshDueAt(
  c: CredentialTiming,
  random01: number,
  p: RefreshPolicy = DEFAULT_REFRESH_POLICY,
  jitterFraction: number = DEFAULT_JITTER_FRACTION,
): number | null {
  const due = refreshDueAt(c, p);
  if (due === null) return null;
  const jittered = withJitter(due, refreshMarginMs(c, p) * jitterFraction, random01);
  // Never before the token was issued: that would make a fresh token due at once.
  return Math.max(jittered, Math.min(due, c.issuedAtMs));
}
