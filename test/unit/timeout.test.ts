import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { withTimeout } from "../../src/engine/timeout.js";

describe("withTimeout", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("aborts the signal with a TimeoutError when the work outlasts the deadline, not before", async () => {
    let signal: AbortSignal | null = null;
    const pending = withTimeout(
      1_000,
      (s) =>
        new Promise<never>((_resolve, reject) => {
          signal = s;
          s.addEventListener("abort", () => reject(s.reason));
        }),
    );
    const settled = expect(pending).rejects.toMatchObject({ name: "TimeoutError" });
    await vi.advanceTimersByTimeAsync(999);
    expect((signal as AbortSignal | null)?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await settled;
    expect((signal as AbortSignal | null)?.reason).toBeInstanceOf(DOMException);
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
});
