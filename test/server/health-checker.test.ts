// Health checks promise every live connection an auth.test once a period. At a fixed 2 a second a
// process checks 43,200 connections in 6 h; past that the sweep is paced faster (up to 50 a second).

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import { checkPauseMs, HealthChecker, type HealthCheckerOptions } from "../../src/server/health-checker.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { interceptStore } from "../helpers/intercept-store.js";

const SIX_HOURS = 6 * 3_600_000;

describe("the pause between two health checks", () => {
  it("is the configured rate while that covers every live connection within 80 % of a period", () => {
    expect(checkPauseMs(2, SIX_HOURS, 1_000)).toBe(500);
    expect(checkPauseMs(2, SIX_HOURS, 34_560)).toBe(500); // exactly 2 a second needed
  });

  it("is shorter for more connections, and never below 20 ms (50 a second)", () => {
    expect(checkPauseMs(2, SIX_HOURS, 100_000)).toBeCloseTo(172.8, 5);
    expect(checkPauseMs(2, SIX_HOURS, 10_000_000)).toBe(20);
  });

  it("keeps a configured rate above that cap", () => {
    expect(checkPauseMs(100, SIX_HOURS, 1_000)).toBe(10);
    expect(checkPauseMs(100, SIX_HOURS, 10_000_000)).toBe(10);
  });
});

describe("a health check sweep", () => {
  let h: EngineHarness;
  beforeEach(async () => {
    h = await openEngineHarness("sqlite");
  });
  afterEach(async () => {
    await h.close();
  });

  /** A checker over ten connections paced for a 2 s period: 6.25 a second, not the 2 configured. */
  function checkerOf(options: Partial<HealthCheckerOptions> = {}) {
    const pauses: number[] = [];
    const warned: string[] = [];
    const checker = new HealthChecker({
      warden: h.warden,
      store: h.store,
      clock: h.clock,
      logger: { debug() {}, info() {}, warn: (_o, msg) => void warned.push(msg ?? ""), error() {} },
      periodMs: 2_000,
      perSecond: 2,
      sleep: async (ms) => void pauses.push(ms),
      ...options,
    });
    return { checker, pauses, warned };
  }
  const aSweep = (pauses: number[]) =>
    eventually(
      () => pauses.length,
      (n) => n >= 10,
      { what: "a sweep over the ten connections" },
    );

  it("checks every live connection, paced to end within the period however many there are", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await h.installAndImport()).id);
    const { checker, pauses } = checkerOf();
    checker.start(); // a sweep at once
    await aSweep(pauses);
    await checker.stop();
    expect(pauses).toEqual(new Array(10).fill(160));
    for (const id of ids) {
      expect((await h.warden.connections.events(id)).map((e) => e.type)).toContain("checked");
    }
  });

  // A pause is the time between two checks' starts: auth.test takes a round trip to Slack (100 ms
  // and more), so a check awaited before each pause checked 100,000 connections (172.8 ms apart)
  // at under 3.7 a second, 7.6 h where 4.8 were promised, and never near 50 a second.
  it("does not wait for one check to answer before pausing for the next", async () => {
    for (let i = 0; i < 10; i++) await h.installAndImport();
    let open!: () => void;
    const answered = new Promise<void>((resolve) => {
      open = resolve;
    });
    let started = 0;
    const warden = {
      ...h.warden,
      connections: {
        ...h.warden.connections,
        check: async (id: string) => {
          started++;
          await answered; // Slack has not answered yet
          return h.warden.connections.check(id);
        },
      },
    };
    const { checker, pauses } = checkerOf({ warden });
    checker.start();
    try {
      // Every check starts while none has its answer (waiting for one would stop at the first).
      await eventually(
        () => started,
        (n) => n >= 10,
        { what: "all ten checks to start before any answer" },
      );
      open();
      await aSweep(pauses);
    } finally {
      open();
      await checker.stop();
    }
    expect(pauses).toEqual(new Array(10).fill(160));
  });

  // Counting the live connections is a store read like the listing: when it fails, the sweep fails
  // as a failed listing does (logged, nothing checked), and the next sweep goes on.
  it("a sweep whose count of live connections fails is logged and the next one runs", async () => {
    for (let i = 0; i < 10; i++) await h.installAndImport();
    let failures = 1;
    const store = interceptStore(h.store, {
      countConnectionsByStatus: async (real) => {
        if (failures-- > 0)
          throw new TokenwardenError("store_unavailable", "SQLite countConnectionsByStatus failed");
        return real();
      },
    });
    const { checker, pauses, warned } = checkerOf({ store, periodMs: 10_000 }); // next sweep 1 s on
    checker.start();
    try {
      await aSweep(pauses);
    } finally {
      await checker.stop();
    }
    expect(warned).toContain("health check sweep failed");
  });

  // A `serve` without SLACK_CLIENT_ID / SLACK_CLIENT_SECRET (a replica that only hands out stored
  // tokens) shares the store with ones that run Slack. It took each connection's slot for the period,
  // failed the check ("provider slack is not configured", a warning per connection), and the processes
  // that could check it skipped it as already taken: in such a fleet, those connections went unchecked.
  it("leaves a connection of a provider its warden does not run to a process that runs it", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.installAndImport()).id);
    const bare = await h.peer({ providers: {} });
    /** One sweep, started as serve starts it (its first runs at once); how many checks it started. */
    const oneSweep = async (checker: HealthChecker) => {
      checker.start();
      const checked = await checker.sweep();
      await checker.stop();
      return checked;
    };
    const without = checkerOf({ warden: bare, periodMs: SIX_HOURS });
    await oneSweep(without.checker);
    expect(without.pauses).toEqual([]);
    expect(without.warned).toEqual([]);
    const withSlack = checkerOf({ periodMs: SIX_HOURS });
    await oneSweep(withSlack.checker);
    expect(withSlack.pauses).toHaveLength(3);
    expect(withSlack.warned).toEqual([]);
    for (const id of ids) {
      expect((await h.warden.connections.events(id)).map((e) => e.type)).toContain("checked");
    }
  });
});
