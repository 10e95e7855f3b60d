import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_MIN_TTL_SECONDS,
  DEFAULT_REFRESH_POLICY,
  isDue,
  jitteredRefreshDueAt,
  needsToken,
  refreshDueAt,
  refreshMarginMs,
  withJitter,
} from "../../src/core/refresh-policy.js";

const HOUR = 3_600_000;
const slack = { expiresAtMs: 12 * HOUR, issuedAtMs: 0, hasRefreshToken: true };

describe("refresh policy", () => {
  it("refreshes Slack's 12 h tokens 2 h before expiry, like the Slack SDKs", () => {
    expect(refreshMarginMs(slack, DEFAULT_REFRESH_POLICY)).toBe(2 * HOUR);
    expect(refreshDueAt(slack)).toBe(10 * HOUR);
    expect(isDue(slack, 10 * HOUR - 1)).toBe(false);
    expect(isDue(slack, 10 * HOUR)).toBe(true);
  });

  it("keeps at least 5 minutes of margin for short tokens, and caps at maxMarginMs", () => {
    const oneHour = { expiresAtMs: HOUR, issuedAtMs: 0, hasRefreshToken: true };
    expect(refreshMarginMs(oneHour, DEFAULT_REFRESH_POLICY)).toBe(10 * 60_000);
    const twentyMin = { expiresAtMs: 20 * 60_000, issuedAtMs: 0, hasRefreshToken: true };
    expect(refreshMarginMs(twentyMin, DEFAULT_REFRESH_POLICY)).toBe(5 * 60_000);
    const thirtyDays = { expiresAtMs: 30 * 24 * HOUR, issuedAtMs: 0, hasRefreshToken: true };
    expect(refreshMarginMs(thirtyDays, { ...DEFAULT_REFRESH_POLICY, maxMarginMs: 6 * HOUR })).toBe(6 * HOUR);
  });

  it("never makes a freshly issued token due (margin ≤ half the lifetime)", () => {
    const twoMin = { expiresAtMs: 120_000, issuedAtMs: 0, hasRefreshToken: true };
    expect(refreshDueAt(twoMin)).toBe(60_000);
    expect(isDue(twoMin, 0)).toBe(false);
  });

  it("has nothing to refresh without expiry or without a refresh token", () => {
    expect(refreshDueAt({ expiresAtMs: null, issuedAtMs: 0, hasRefreshToken: true })).toBeNull();
    expect(refreshDueAt({ ...slack, hasRefreshToken: false })).toBeNull();
    expect(isDue({ ...slack, hasRefreshToken: false }, 12 * HOUR)).toBe(false);
  });

  it("treats an imported, already expired token as due at once", () => {
    const expired = { expiresAtMs: 1_000, issuedAtMs: 5_000, hasRefreshToken: true };
    expect(isDue(expired, 5_000)).toBe(true);
    expect(needsToken(expired, 5_000, 0)).toBe(true);
  });

  describe("needsToken (on-demand refresh in getToken)", () => {
    it("is true inside the margin or inside the caller's min TTL, whichever is larger", () => {
      expect(DEFAULT_MIN_TTL_SECONDS).toBe(60);
      expect(needsToken(slack, 9 * HOUR, 60)).toBe(false);
      expect(needsToken(slack, 10 * HOUR, 60)).toBe(true);
      expect(needsToken(slack, 7 * HOUR, 6 * 3600)).toBe(true);
      expect(needsToken(slack, 5 * HOUR, 6 * 3600)).toBe(false);
    });

    it("ignores the margin when there is no refresh token: only the min TTL counts", () => {
      const noRefresh = { ...slack, hasRefreshToken: false };
      expect(needsToken(noRefresh, 11 * HOUR, 60)).toBe(false);
      expect(needsToken(noRefresh, 12 * HOUR - 59_000, 60)).toBe(true);
    });

    it("never asks to refresh a token without expiry", () => {
      expect(needsToken({ expiresAtMs: null, issuedAtMs: 0, hasRefreshToken: true }, 1e15, 1e9)).toBe(false);
    });
  });

  describe("jitter", () => {
    it("only moves the due time earlier, by at most the window", () => {
      expect(withJitter(1_000, 100, 0)).toBe(1_000);
      expect(withJitter(1_000, 100, 0.5)).toBe(950);
      expect(withJitter(1_000, -5, 0.5)).toBe(1_000);
      expect(withJitter(1_000, 100, Number.NaN)).toBe(1_000);
    });

    it("property: jittered due times stay in [due − window, due] and before expiry", () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2 ** 40 }),
          fc.integer({ min: 1, max: 2 ** 32 }),
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          (issuedAtMs, lifetimeMs, r) => {
            const c = { expiresAtMs: issuedAtMs + lifetimeMs, issuedAtMs, hasRefreshToken: true };
            const due = refreshDueAt(c) as number;
            const jittered = jitteredRefreshDueAt(c, r) as number;
            expect(jittered).toBeLessThanOrEqual(due);
            expect(due).toBeLessThanOrEqual(c.expiresAtMs);
            expect(jittered).toBeGreaterThan(issuedAtMs);
            expect(due - jittered).toBeLessThanOrEqual(refreshMarginMs(c, DEFAULT_REFRESH_POLICY));
          },
        ),
      );
    });

    it("spreads Slack tokens over the first quarter of the 2 h window", () => {
      expect(jitteredRefreshDueAt(slack, 0)).toBe(10 * HOUR);
      expect(jitteredRefreshDueAt(slack, 0.999_999)).toBeGreaterThan(9.5 * HOUR);
      expect(jitteredRefreshDueAt({ ...slack, hasRefreshToken: false }, 0.5)).toBeNull();
    });
  });
});
