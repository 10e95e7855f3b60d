// A host clock stepped back (an NTP step at boot, a VM resumed from a snapshot) must not hold a process
// back for as long as the step: the probe spacing after a refusal, the "sent after the refusal"
// ordering and a 429's pause are this process's own schedules, kept on a clock that never runs back.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Clock } from "../../src/core/ports.js";
import { type EngineHarness, FAST_TIMINGS, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { on } from "../helpers/provider-flag-fixtures.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("a clock stepped back on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  /**
   * A host's clocks: the wall clock is the harness's minus a step the test sets (as NTP left it); the
   * monotonic clock is the harness's, which no step moves.
   */
  function steppable(harness: EngineHarness): Clock & { stepBack(ms: number): void } {
    let behindMs = 0;
    return {
      now: () => harness.clock.now() - behindMs,
      elapsedMs: () => harness.clock.now(),
      stepBack: (ms) => {
        behindMs += ms;
      },
    };
  }

  it("a refused process whose clock then steps back an hour probes again 10 s on, and its success lifts the flag", async () => {
    h = await openEngineHarness(kind);
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    let fixed = false;
    const clock = steppable(h);
    const proc = await on(h, "the-secret", { accepted: () => fixed }, clock);
    expect((await proc.connections.refresh(a.id))[0]).toMatchObject({ refreshed: false });
    expect((await proc.providerState("slack")).appliesHere).toBe(true);
    fixed = true; // regenerated at Slack to match
    clock.stepBack(HOUR);
    h.clock.advance(11_000);
    const row = (await proc.connections.refresh(b.id))[0];
    const state = await proc.providerState("slack");
    expect({ refreshed: row?.refreshed, status: state.status, appliesHere: state.appliesHere }).toEqual({
      refreshed: true,
      status: "ok",
      appliesHere: false,
    });
  });

  it("the refresher of a refused process whose clock then steps back an hour probes again a minute on", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 3; i++) await h.installAndImport();
    let fixed = false;
    const clock = steppable(h);
    const proc = await on(h, "the-secret", { accepted: () => fixed }, clock);
    h.clock.advance(11.5 * HOUR); // all due, and still due an hour earlier
    await proc.refreshDue(); // refused: held back to one probe a minute
    expect((await proc.providerState("slack")).appliesHere).toBe(true);
    fixed = true;
    clock.stepBack(HOUR);
    h.clock.advance(61_000);
    await proc.refreshDue(); // the probe: lifts the flag
    await proc.refreshDue(); // the rest
    const refreshed = h.emu.control.counters().refreshes;
    expect({ refreshed, appliesHere: (await proc.providerState("slack")).appliesHere }).toEqual({
      refreshed: 3,
      appliesHere: false,
    });
  });

  it("a 429's pause ends after its Retry-After even if the clock steps back an hour meanwhile", async () => {
    h = await openEngineHarness(kind);
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    const clock = steppable(h);
    const proc = await h.peer({ clock });
    h.emu.control.fault("oauth.v2.access", { kind: "ratelimited", retryAfterSeconds: 30, times: 1 });
    expect((await proc.connections.refresh(a.id))[0]).toMatchObject({ refreshed: false });
    clock.stepBack(HOUR);
    h.clock.advance(31_000);
    expect((await proc.connections.refresh(b.id))[0]).toMatchObject({ refreshed: true });
  });
});

// Review findings (branch review7): each test below fails on the code it was written against.
describe.each(STORE_KINDS)("a process's own schedules on %s (review)", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    vi.restoreAllMocks();
    await h?.close();
    h = null;
  });

  it("a caller waiting on another process's refresh gives up after waitTimeoutMs even if the host clock steps back an hour meanwhile", async () => {
    h = await openEngineHarness(kind);
    const a = await h.installAndImport();
    // A holder that died mid-refresh: its lease (ten minutes on the wall clock) has not lapsed.
    const held = await h.store.claimRefresh(
      { connectionId: a.id, kind: "bot" },
      { owner: "dead", nowMs: h.clock.now(), leaseMs: 10 * 60_000, freshUntilMs: Number.MAX_SAFE_INTEGER },
    );
    expect(held.kind).toBe("claimed");
    const realNow = Date.now.bind(Date);
    const proc = await h.peer({
      store: interceptStore(await openSealedStore(kind, h.location, h.key), {
        claimRefresh: async (real, ...args) => {
          const claim = await real(...args);
          // The caller now waits: the host's clock is stepped back an hour (an NTP step).
          if (claim.kind === "held_by_other")
            vi.spyOn(Date, "now").mockImplementation(() => realNow() - HOUR);
          return claim;
        },
      }),
      timings: { ...FAST_TIMINGS, waitTimeoutMs: 300 },
    });
    let rows: Awaited<ReturnType<typeof proc.connections.refresh>> | null = null;
    const refreshing = proc.connections.refresh(a.id).then((r) => {
      rows = r;
    });
    try {
      await eventually(
        () => rows,
        (r) => r !== null,
        { timeoutMs: 3_000, what: "the caller to give up after waitTimeoutMs (300 ms)" },
      );
      expect(rows?.[0]).toMatchObject({ refreshed: false, error: "provider_unavailable" });
    } finally {
      vi.restoreAllMocks(); // the wait ends at its wall-clock deadline
      await refreshing;
    }
  });

  it("a process whose monotonic clock reads below zero (elapsedMs from any origin) still probes a flagged provider", async () => {
    h = await openEngineHarness(kind);
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    let fixed = false;
    const refused = await on(h, "the-secret", { accepted: () => fixed });
    expect((await refused.connections.refresh(a.id))[0]).toMatchObject({ refreshed: false });
    fixed = true; // regenerated at Slack to match
    const harness = h;
    // Ports.Clock: "milliseconds from any origin": here, one a day after the wall clock's epoch instant.
    const origin = harness.clock.now() + 24 * HOUR;
    const proc = await on(
      h,
      "the-secret",
      { accepted: () => fixed },
      { now: () => harness.clock.now(), elapsedMs: () => harness.clock.now() - origin },
    );
    expect((await proc.providerState("slack")).appliesHere).toBe(true); // read at startup
    h.clock.advance(11_000);
    const row = (await proc.connections.refresh(b.id))[0];
    expect({
      refreshed: row?.refreshed,
      appliesHere: (await proc.providerState("slack")).appliesHere,
    }).toEqual({
      refreshed: true,
      appliesHere: false,
    });
  });
});
