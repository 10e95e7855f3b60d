/**
 * When to try a failed refresh again (DESIGN.md invariant 4: network errors,
 * timeouts, 5xx and 429 back off, honour `Retry-After`, never mark a connection
 * dead). Pure: time and randomness are parameters.
 */

export interface BackoffOptions {
  /** Consecutive failures including the one just recorded (1 after the first failure). */
  failureCount: number;
  nowMs: number;
  /** A float in [0, 1) from the injected `Random`. */
  random01: number;
  /** The provider's `Retry-After`, in ms: a floor, never shortened. */
  retryAfterMs?: number | undefined;
  /** The smallest delay, and the base of the exponential ceiling. */
  baseMs: number;
  /** The exponential ceiling stops growing here. */
  maxMs: number;
  /**
   * When the current access token expires. While it is still valid, the next
   * attempt is brought forward to `expiresAtMs − expirySafetyMs` at the latest,
   * so a run of transient failures never lets a healthy connection lapse.
   */
  expiresAtMs?: number | null | undefined;
  /** How long before expiry the last attempt should happen; default 60 s. */
  expirySafetyMs?: number | undefined;
}

/** 10 s, doubling, up to 10 min: inside Slack's 2 h margin that is ~15 attempts. */
export const DEFAULT_BACKOFF: Readonly<{ baseMs: number; maxMs: number }> = Object.freeze({
  baseMs: 10_000,
  maxMs: 10 * 60_000,
});

const DEFAULT_EXPIRY_SAFETY_MS = 60_000;

/**
 * The earliest instant of the next attempt after a transient failure.
 *
 * Exponential backoff with full jitter ("Exponential Backoff and Jitter", AWS
 * Architecture Blog, 2015): the delay is uniform in [baseMs, min(maxMs, baseMs × 2^n)],
 * so retries of many connections after one outage spread out instead of
 * stampeding. The floor of `baseMs` (instead of 0) keeps a run of small random
 * numbers from turning into a tight loop.
 *
 * Order of the rules, and why:
 * 1. While the token is still valid, the delay is cut so that an attempt happens
 *    before `expiresAtMs − expirySafetyMs` (but never sooner than `baseMs`):
 *    a transient failure must not cost a working connection.
 * 2. `Retry-After` (slack-api.md §5, RFC 9110 §10.2.3) is a floor applied last,
 *    even over rule 1: retrying earlier only earns another 429 and may extend
 *    the limit; a token that lapses meanwhile is refreshed on the next attempt
 *    (refresh tokens outlive their access tokens, slack-api.md §3.5).
 *
 * @example
 * nextAttemptAt({ failureCount: 1, nowMs: 0, random01: 0.5, baseMs: 10_000, maxMs: 600_000 });
 * // 15_000: uniform in [10 s, 20 s]
 * nextAttemptAt({ failureCount: 1, nowMs: 0, random01: 0, retryAfterMs: 30_000, baseMs: 10_000, maxMs: 600_000 });
 * // 30_000: Retry-After wins
 */
export function nextAttemptAt(o: BackoffOptions): number {
  const baseMs = Math.max(0, o.baseMs);
  const maxMs = Math.max(baseMs, o.maxMs);
  const n = Math.max(1, Math.floor(o.failureCount));
  // 2 ** n overflows to Infinity for huge n; Math.min tames it.
  const ceilingMs = Math.min(maxMs, baseMs * 2 ** Math.min(n, 52));
  const r = Number.isFinite(o.random01) ? Math.min(Math.max(o.random01, 0), 1) : 0;
  let delayMs = baseMs + r * (ceilingMs - baseMs);

  if (o.expiresAtMs !== undefined && o.expiresAtMs !== null && o.expiresAtMs > o.nowMs) {
    const lastChanceMs = o.expiresAtMs - (o.expirySafetyMs ?? DEFAULT_EXPIRY_SAFETY_MS) - o.nowMs;
    delayMs = Math.min(delayMs, Math.max(baseMs, lastChanceMs));
  }
  if (o.retryAfterMs !== undefined && Number.isFinite(o.retryAfterMs) && o.retryAfterMs > 0) {
    delayMs = Math.max(delayMs, o.retryAfterMs);
  }
  return o.nowMs + Math.ceil(delayMs);
}
