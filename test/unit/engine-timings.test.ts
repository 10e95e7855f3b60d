// The default timings' relations that single flight rests on once a holder dies mid-call.
import { describe, expect, it } from "vitest";
import { DEFAULT_TIMINGS, type EngineTimings, resolveTimings } from "../../src/engine/context.js";

describe("default engine timings", () => {
  // Found by a chaos soak: with a 15 s lease under a 20 s provider timeout, a peer took over a dead
  // holder's claim and re-sent the refresh token while the dead holder's request could still reach the
  // provider after it, minting a newer sibling that left the stored refresh token superseded.
  it("a lease outlasts a provider call and the first backoff, as a live holder's own retry would", () => {
    const t = DEFAULT_TIMINGS;
    expect(t.leaseMs).toBeGreaterThanOrEqual(t.providerTimeoutMs + t.backoffBaseMs);
  });

  it("a caller waits long enough to see a dead holder's lease lapse and its own refresh answered", () => {
    const t = DEFAULT_TIMINGS;
    expect(t.waitTimeoutMs).toBeGreaterThanOrEqual(t.leaseMs + t.providerTimeoutMs);
  });
});

describe("resolveTimings", () => {
  it("keeps a default where the value given is undefined, and takes a jitter of 0", () => {
    // As a JavaScript caller may pass it (TypeScript's exact optional properties would refuse it).
    const given = { leaseMs: undefined, jitterFraction: 0, pollMs: 7 } as unknown as Partial<EngineTimings>;
    expect(resolveTimings(given)).toEqual({
      ...DEFAULT_TIMINGS,
      jitterFraction: 0,
      pollMs: 7,
    });
  });

  it.each([
    [{ providerSyncMs: 0 }, /timings\.providerSyncMs must be a whole number/],
    [{ leaseMs: -1 }, /timings\.leaseMs/],
    [{ pollMs: Number.NaN }, /timings\.pollMs/],
    [{ waitTimeoutMs: 1.5 }, /timings\.waitTimeoutMs/],
    [{ providerTimeoutMs: 86_400_001 }, /timings\.providerTimeoutMs must be .* to 86400000 \(a day\)/],
    [{ jitterFraction: 1 }, /timings\.jitterFraction/],
    [{ backoffBaseMs: 10_000, backoffMaxMs: 5_000 }, /backoffMaxMs must not be below/],
  ])("refuses %o with config_invalid naming the timing", (given, message) => {
    expect(() => resolveTimings(given)).toThrow(message);
    expect(() => resolveTimings(given)).toThrow(expect.objectContaining({ code: "config_invalid" }));
  });
});
