import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RefreshClaim } from "../../src/core/ports.js";
import { ClaimKeeper } from "../../src/engine/claim-keeper.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };

const claim = (connectionId: string): RefreshClaim =>
  ({ ref: { connectionId, kind: "bot" }, claimId: `c-${connectionId}`, owner: "me" }) as RefreshClaim;

describe("ClaimKeeper", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("renews each held claim once it is a third of the lease old, well before the lease ends", async () => {
    const renewed: string[] = [];
    const keeper = new ClaimKeeper(15_000, async (c) => renewed.push(c.ref.connectionId), silent);
    keeper.hold(claim("T1"));
    await vi.advanceTimersByTimeAsync(2_500);
    const letGoT2 = keeper.hold(claim("T2"));
    await vi.advanceTimersByTimeAsync(2_499);
    expect(renewed).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_500); // T1 is 7.5 s old: renewed at the tick after 5 s
    expect(renewed).toEqual(["T1"]);
    await vi.advanceTimersByTimeAsync(2_500); // T2 is 7.5 s old
    expect(renewed).toEqual(["T1", "T2"]);
    letGoT2();
    await vi.advanceTimersByTimeAsync(15_000);
    // Every renewal lands at most half a lease after the last one; T2 is no longer renewed.
    expect(renewed.filter((id) => id === "T2")).toEqual(["T2"]);
    expect(renewed.filter((id) => id === "T1").length).toBe(4);
  });

  it("runs one timer for any number of claims, and none once all are let go", () => {
    const keeper = new ClaimKeeper(15_000, async () => {}, silent);
    const letGo = Array.from({ length: 100 }, (_, i) => keeper.hold(claim(`T${i}`)));
    expect(vi.getTimerCount()).toBe(1);
    expect(keeper.size).toBe(100);
    for (const f of letGo) f();
    expect(keeper.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("logs a failed renewal with the connection id and keeps renewing", async () => {
    const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = {
      ...silent,
      warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
    };
    let attempts = 0;
    const keeper = new ClaimKeeper(
      15_000,
      async () => {
        attempts++;
        if (attempts === 1) throw new Error("store unavailable");
      },
      logger,
    );
    keeper.hold(claim("T1"));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(attempts).toBe(1);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toBe("could not renew a refresh claim");
    expect(warnings[0]?.fields["connectionId"]).toBe("T1");
    expect(String(warnings[0]?.fields["err"])).toContain("store unavailable");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(attempts).toBe(2);
    expect(warnings).toHaveLength(1);
  });
});
