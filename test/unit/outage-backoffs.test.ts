// The sweep that ends an outage's backoffs runs in the background of a refresh that succeeded: at most
// once a minute per provider, and a store that fails it leaves a warning, never an error to the caller.
import { describe, expect, it } from "vitest";
import type { EngineContext } from "../../src/engine/context.js";
import { endOutageBackoffs } from "../../src/engine/outage-backoffs.js";
import { eventually } from "../helpers/eventually.js";

function context(sweep: (provider: string, nowMs: number, delayMs: number) => Promise<number>) {
  const calls: Array<[string, number, number]> = [];
  const warned: string[] = [];
  let steady = 0;
  const ctx = {
    store: {
      endOutageBackoffs: (provider: string, nowMs: number, delayMs: number) => {
        calls.push([provider, nowMs, delayMs]);
        return sweep(provider, nowMs, delayMs);
      },
    },
    steadyNow: () => steady,
    clock: { now: () => 1_000_000 + steady },
    timings: { backoffBaseMs: 10_000 },
    outageEndedAtMs: new Map<string, number>(),
    logger: { debug() {}, info() {}, error() {}, warn: (_: object, msg?: string) => warned.push(msg ?? "") },
  } as unknown as EngineContext;
  return { ctx, calls, warned, advance: (ms: number) => (steady += ms) };
}

describe("endOutageBackoffs", () => {
  it("sweeps a provider at most once a minute, each provider on its own, with the first backoff for doubt", () => {
    const { ctx, calls, advance } = context(async () => 3);
    endOutageBackoffs(ctx, "slack");
    endOutageBackoffs(ctx, "slack");
    endOutageBackoffs(ctx, "github");
    advance(59_999);
    endOutageBackoffs(ctx, "slack");
    advance(1);
    endOutageBackoffs(ctx, "slack");
    expect(calls).toEqual([
      ["slack", 1_000_000, 10_000],
      ["github", 1_000_000, 10_000],
      ["slack", 1_060_000, 10_000],
    ]);
  });

  it("logs a warning when the store fails the sweep, and throws nothing", async () => {
    const { ctx, warned } = context(async () => {
      throw new Error("store down");
    });
    expect(() => endOutageBackoffs(ctx, "slack")).not.toThrow();
    await eventually(
      () => warned,
      (w) => w.length === 1,
      { what: "the warning" },
    );
    expect(warned[0]).toContain("run out on their own");
  });
});
