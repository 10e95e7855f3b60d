import { describe, expect, it } from "vitest";
import { mapBounded } from "../../src/cli/map-bounded.js";

/** A call that finishes when the test says, so overlap is counted without timing anything. */
function gated() {
  let inFlight = 0;
  let most = 0;
  const waiting: Array<() => void> = [];
  return {
    fn: async (n: number): Promise<number> => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise<void>((resolve) => waiting.push(resolve));
      inFlight--;
      return n * 10;
    },
    /** Lets the calls waiting now finish, in reverse order of arrival. */
    release: async () => {
      for (const go of waiting.splice(0).reverse()) go();
      await new Promise((r) => setImmediate(r));
    },
    most: () => most,
    waiting: () => waiting.length,
  };
}

describe("mapBounded", () => {
  it("runs at most `limit` at once and keeps the items' order whatever order they finish in", async () => {
    const g = gated();
    const all = mapBounded([1, 2, 3, 4, 5, 6, 7], 3, g.fn);
    await new Promise((r) => setImmediate(r));
    expect(g.waiting()).toBe(3);
    while (g.waiting() > 0) await g.release();
    expect(await all).toEqual([10, 20, 30, 40, 50, 60, 70]);
    expect(g.most()).toBe(3);
  });

  it("handles fewer items than the limit, and none", async () => {
    expect(await mapBounded([2], 8, async (n) => n + 1)).toEqual([3]);
    expect(await mapBounded([], 8, async (n: number) => n)).toEqual([]);
  });

  it("rejects with the first failure once the calls in flight have settled, starting no new ones", async () => {
    const started: number[] = [];
    const settled: number[] = [];
    const run = mapBounded([1, 2, 3, 4], 2, async (n) => {
      started.push(n);
      await new Promise((r) => setImmediate(r));
      if (n === 1) throw new Error("one failed");
      settled.push(n);
      return n;
    });
    await expect(run).rejects.toThrow("one failed");
    expect(settled).toContain(2); // the call beside the failure was awaited, not abandoned
    expect(started).not.toContain(4);
  });
});
