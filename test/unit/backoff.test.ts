import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DEFAULT_BACKOFF, nextAttemptAt } from "../../src/core/backoff.js";

const base = { nowMs: 1_000_000, baseMs: 10_000, maxMs: 600_000 };

describe("backoff", () => {
  it("grows exponentially with full jitter above a floor of baseMs", () => {
    expect(nextAttemptAt({ ...base, failureCount: 1, random01: 0 })).toBe(1_010_000);
    expect(nextAttemptAt({ ...base, failureCount: 1, random01: 0.5 })).toBe(1_015_000);
    expect(nextAttemptAt({ ...base, failureCount: 3, random01: 0.5 })).toBe(1_000_000 + 45_000);
    expect(nextAttemptAt({ ...base, failureCount: 1000, random01: 0.999999 })).toBeLessThanOrEqual(1_600_000);
  });

  it("honours Retry-After as a floor", () => {
    expect(nextAttemptAt({ ...base, failureCount: 1, random01: 0, retryAfterMs: 30_000 })).toBe(1_030_000);
    expect(nextAttemptAt({ ...base, failureCount: 1, random01: 0, retryAfterMs: 1_000 })).toBe(1_010_000);
  });

  it("retries before a still-valid token lapses, unless Retry-After says otherwise", () => {
    const expiresAtMs = 1_000_000 + 120_000;
    const at = nextAttemptAt({ ...base, failureCount: 10, random01: 0.99, expiresAtMs });
    expect(at).toBe(expiresAtMs - 60_000);
    expect(
      nextAttemptAt({ ...base, failureCount: 10, random01: 0.99, expiresAtMs, retryAfterMs: 300_000 }),
    ).toBe(1_300_000);
    // Already expired: nothing to protect, plain backoff.
    expect(nextAttemptAt({ ...base, failureCount: 1, random01: 0, expiresAtMs: 0 })).toBe(1_010_000);
  });

  it("property: the next attempt is within [now + base, now + max(max, retryAfter)]", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.option(fc.integer({ min: 0, max: 3_600_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 2 * 3_600_000 }), { nil: undefined }),
        (failureCount, random01, retryAfterMs, expiresInMs) => {
          const nowMs = 5_000_000;
          const at = nextAttemptAt({
            failureCount,
            nowMs,
            random01,
            retryAfterMs,
            expiresAtMs: expiresInMs === undefined ? undefined : nowMs + expiresInMs,
            ...DEFAULT_BACKOFF,
          });
          expect(at).toBeGreaterThanOrEqual(nowMs + DEFAULT_BACKOFF.baseMs);
          expect(at).toBeLessThanOrEqual(nowMs + Math.max(DEFAULT_BACKOFF.maxMs, retryAfterMs ?? 0));
          if (retryAfterMs !== undefined) expect(at).toBeGreaterThanOrEqual(nowMs + retryAfterMs);
        },
      ),
    );
  });
});
