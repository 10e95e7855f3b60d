import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { withTimeout } from "../../src/engine/timeout.js";

/** A call that never settles on its own: it rejects with the signal's reason once aborted. */
function hang(into: { signal?: AbortSignal }) {
  return (s: AbortSignal) =>
    new Promise<never>((_resolve, reject) => {
      into.signal = s;
      s.addEventListener("abort", () => reject(s.reason));
    });
}

describe("withTimeout", () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "performance"],
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("aborts the signal with a TimeoutError after the deadline, never before, at most 1 % late", async () => {
    const seen: { signal?: AbortSignal } = {};
    const pending = withTimeout(1_000, hang(seen));
    const settled = expect(pending).rejects.toMatchObject({ name: "TimeoutError" });
    await vi.advanceTimersByTimeAsync(999);
    expect(seen.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(11);
    await settled;
    expect(seen.signal?.reason).toBeInstanceOf(DOMException);
  });

  it("clears its timer once the work settles, with a value or an error", async () => {
    expect(await withTimeout(1_000, async () => 42)).toBe(42);
    expect(vi.getTimerCount()).toBe(0);
    await expect(
      withTimeout(1_000, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("shares one signal and timer among calls starting within a hundredth of the timeout", async () => {
    const a: { signal?: AbortSignal } = {};
    const b: { signal?: AbortSignal } = {};
    const c: { signal?: AbortSignal } = {};
    const first = withTimeout(1_000, hang(a)).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(9);
    const second = withTimeout(1_000, hang(b)).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(1); // the slice closes 10 ms after it opened
    const third = withTimeout(1_000, hang(c)).catch((e: unknown) => e);
    expect(b.signal).toBe(a.signal);
    expect(c.signal).not.toBe(a.signal);
    expect(vi.getTimerCount()).toBe(2);
    // The second call joined 9 ms late: it still gets its full second.
    await vi.advanceTimersByTimeAsync(998);
    expect(a.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(2);
    expect(await first).toMatchObject({ name: "TimeoutError" });
    expect(await second).toMatchObject({ name: "TimeoutError" });
    expect(c.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(10);
    expect(await third).toMatchObject({ name: "TimeoutError" });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("keeps a shared deadline while one of its calls is running, and drops it after the last", async () => {
    const a: { signal?: AbortSignal } = {};
    let finishQuick: (v: string) => void = () => {};
    const quick = withTimeout(
      1_000,
      () =>
        new Promise<string>((resolve) => {
          finishQuick = resolve;
        }),
    );
    const slow = withTimeout(1_000, hang(a)).catch((e: unknown) => e);
    finishQuick("done");
    expect(await quick).toBe("done");
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_010);
    expect(await slow).toMatchObject({ name: "TimeoutError" });
    expect(vi.getTimerCount()).toBe(0);
  });

  it("lets many calls share a signal without a listener-leak warning", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const calls = Array.from({ length: 50 }, () => withTimeout(1_000, hang({})).catch(() => null));
      await vi.advanceTimersByTimeAsync(1_010);
      await Promise.all(calls);
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
