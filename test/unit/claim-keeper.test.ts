import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { RefreshClaim } from "../../src/core/ports.js";
import { ClaimKeeper } from "../../src/engine/claim-keeper.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger that keeps its warnings. */
function warningLogger() {
  const warnings: Array<{ fields: Record<string, unknown>; message: string }> = [];
  const logger = {
    ...silent,
    warn: (fields: Record<string, unknown>, message: string) => warnings.push({ fields, message }),
  };
  return { warnings, logger };
}

/** A keeper whose renewals all hold, recording which connection each was for. */
function recordingKeeper(leaseMs: number) {
  const renewed: string[] = [];
  const keeper = new ClaimKeeper(
    leaseMs,
    async (c) => {
      renewed.push(c.ref.connectionId);
      return true;
    },
    silent,
  );
  return { renewed, keeper };
}

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
    const { renewed, keeper } = recordingKeeper(15_000);
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
    const keeper = new ClaimKeeper(15_000, async () => true, silent);
    const letGo = Array.from({ length: 100 }, (_, i) => keeper.hold(claim(`T${i}`)));
    expect(vi.getTimerCount()).toBe(1);
    expect(keeper.size).toBe(100);
    for (const f of letGo) f();
    expect(keeper.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("logs a failed renewal with the connection id and tries again at the next tick", async () => {
    const { warnings, logger } = warningLogger();
    let attempts = 0;
    const keeper = new ClaimKeeper(
      15_000,
      async () => {
        attempts++;
        if (attempts === 1) throw new Error("store unavailable");
        return true;
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
    // The lease was not extended: retried a tick (a sixth of the lease) later, not a third.
    await vi.advanceTimersByTimeAsync(2_500);
    expect(attempts).toBe(2);
    expect(warnings).toHaveLength(1);
    // That one held: the next is due a third of the lease after it began.
    await vi.advanceTimersByTimeAsync(2_500);
    expect(attempts).toBe(2);
    await vi.advanceTimersByTimeAsync(2_500);
    expect(attempts).toBe(3);
  });

  it("counts a claim's age from when it was taken, not from when it was handed over", async () => {
    const { renewed, keeper } = recordingKeeper(15_000);
    // Taken 4 s ago (it waited for a provider slot): 5 s old at the first tick, 2.5 s from now.
    keeper.hold(claim("T1"), performance.now() - 4_000);
    await vi.advanceTimersByTimeAsync(2_500);
    expect(renewed).toEqual(["T1"]);
  });

  it("sends one renewal at a time per claim, however slow the store is", async () => {
    let calls = 0;
    let answer: (holds: boolean) => void = () => {};
    const keeper = new ClaimKeeper(
      15_000,
      () => {
        calls++;
        return new Promise<boolean>((resolve) => {
          answer = resolve;
        });
      },
      silent,
    );
    keeper.hold(claim("T1"));
    await vi.advanceTimersByTimeAsync(12_500);
    expect(calls).toBe(1);
    answer(true);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls).toBe(2);
  });

  it("stops renewing a claim the store says is gone, and says so once", async () => {
    const { warnings, logger } = warningLogger();
    let calls = 0;
    const keeper = new ClaimKeeper(
      15_000,
      async () => {
        calls++;
        return false;
      },
      logger,
    );
    keeper.hold(claim("T1"));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(calls).toBe(1);
    expect(warnings.map((w) => w.message)).toEqual([
      "a refresh claim was lost before its outcome was stored",
    ]);
    expect(warnings[0]?.fields).toEqual({ connectionId: "T1", kind: "bot" });
    expect(keeper.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(calls).toBe(1);
  });

  it("says nothing when a renewal finds the claim gone after it was let go (its outcome was stored)", async () => {
    const warnings: string[] = [];
    let answer: (holds: boolean) => void = () => {};
    const keeper = new ClaimKeeper(
      15_000,
      () =>
        new Promise<boolean>((resolve) => {
          answer = resolve;
        }),
      { ...silent, warn: (_f: Record<string, unknown>, message: string) => warnings.push(message) },
    );
    const letGo = keeper.hold(claim("T1"));
    await vi.advanceTimersByTimeAsync(5_000);
    letGo();
    answer(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(warnings).toEqual([]);
  });
  it("stops renewing a claim handed back, without a warning when a renewal in flight finds it gone", async () => {
    const { warnings, logger } = warningLogger();
    const renewed: string[] = [];
    let answer: (holds: boolean) => void = () => {};
    const keeper = new ClaimKeeper(
      15_000,
      (c) => {
        renewed.push(c.ref.connectionId);
        return new Promise<boolean>((resolve) => {
          answer = resolve;
        });
      },
      logger,
    );
    const letGo = keeper.hold(claim("T1"));
    await vi.advanceTimersByTimeAsync(5_000); // a renewal is in flight
    const done = keeper.handingBack(claim("T1"));
    answer(false); // the release won: the claim is gone
    await vi.advanceTimersByTimeAsync(15_000);
    expect(renewed).toEqual(["T1"]); // no renewal after the hand-back began
    expect(warnings).toEqual([]);
    expect(keeper.size).toBe(1); // in flight until the hand-back is done
    done();
    letGo(); // the refresh's own let-go, later: harmless
    expect(keeper.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("ClaimKeeper.settled", () => {
  it("waits for a claim being handed back, held or not", async () => {
    const keeper = new ClaimKeeper(15_000, async () => true, silent);
    const done = keeper.handingBack(claim("A"));
    expect(await keeper.settled(20)).toBe(false);
    const settled = keeper.settled(10_000);
    setTimeout(done, 20);
    expect(await settled).toBe(true);
  });

  it("resolves true once the last claim is let go, false at its timeout if one is still held", async () => {
    const keeper = new ClaimKeeper(15_000, async () => true, silent);
    expect(await keeper.settled(0)).toBe(true);
    const letGoA = keeper.hold(claim("A"));
    const letGoB = keeper.hold(claim("B"));
    const settled = keeper.settled(10_000);
    letGoA();
    setTimeout(letGoB, 20);
    expect(await settled).toBe(true);
    keeper.hold(claim("C"));
    expect(await keeper.settled(20)).toBe(false);
  });
});
