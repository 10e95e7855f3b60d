import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChangeFeedWatch } from "../../src/engine/change-feed-watch.js";
import type { EngineContext } from "../../src/engine/context.js";

function contextWith(store: Partial<EngineContext["store"]>) {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const log = (level: string) => (obj: object, msg: string) => lines.push({ level, msg, obj });
  const ctx = {
    store,
    timings: { providerSyncMs: 5_000 },
    steadyNow: () => Date.now(),
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
  } as unknown as EngineContext;
  return { ctx, lines };
}

describe("ChangeFeedWatch", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("logs once when the feed goes down and once when it is back, with how long it was down", () => {
    let hearing = true;
    const { ctx, lines } = contextWith({ hearsChanges: () => hearing });
    const watch = new ChangeFeedWatch(ctx);
    watch.start();
    vi.advanceTimersByTime(10_000);
    expect(lines).toEqual([]);
    hearing = false;
    vi.advanceTimersByTime(15_000); // three checks while down: one line
    expect(lines.map((l) => l.level)).toEqual(["warn"]);
    expect(lines[0]?.msg).toMatch(/not hearing other processes' changes/);
    hearing = true;
    vi.advanceTimersByTime(5_000);
    expect(lines.map((l) => l.level)).toEqual(["warn", "info"]);
    expect(lines[1]?.obj).toEqual({ deafForMs: 15_000 });
    watch.stop();
    hearing = false;
    vi.advanceTimersByTime(20_000);
    expect(lines).toHaveLength(2); // stopped: no more checks
  });

  it("says so at start when the feed is down from the first (a pooler that passes no notification on)", () => {
    const { ctx, lines } = contextWith({ hearsChanges: () => false });
    new ChangeFeedWatch(ctx).start();
    expect(lines.map((l) => l.level)).toEqual(["warn"]);
  });

  it("does nothing for a store that needs no feed (SQLite)", () => {
    const { ctx, lines } = contextWith({});
    const watch = new ChangeFeedWatch(ctx);
    watch.start();
    vi.advanceTimersByTime(60_000);
    expect(lines).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
