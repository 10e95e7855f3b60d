// Instances on hosts whose clocks disagree read their instants off the database's clock: a host whose
// clock runs a minute ahead does not see a live holder's lease as lapsed and spend its refresh token.
import pg from "pg";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Clock } from "../../src/core/ports.js";
import { DatabaseAlignedClock } from "../../src/engine/database-clock.js";
import type { Warden } from "../../src/engine/warden.js";
import { type EngineHarness, FAST_TIMINGS, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { completionGate, interceptStore } from "../helpers/intercept-store.js";
import { grants } from "../helpers/provider-flag-fixtures.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("hosts' clocks that disagree on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a host a minute ahead waits for a live holder's refresh instead of taking its claim over", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const a = await h.installAndImport();
    h.clock.advance(11 * HOUR);
    // A live holder on a host in step with the database: its lease ends 30 s on.
    const held = await h.store.claimRefresh(
      { connectionId: a.id, kind: "bot" },
      { owner: "holder", nowMs: h.clock.now(), leaseMs: 30_000, freshUntilMs: Number.MAX_SAFE_INTEGER },
    );
    expect(held.kind).toBe("claimed");
    // The other host's clock runs a minute ahead; measured against the database's, it reads 60 s ahead.
    const ahead = await h.peer({
      clock: { now: () => harness.clock.now() + 60_000 },
      store: interceptStore(await openSealedStore(kind, h.location, h.key), {
        clockOffsetMs: async () => -60_000,
      }),
      timings: { ...FAST_TIMINGS, waitTimeoutMs: 300 },
    });
    const row = (await ahead.connections.refresh(a.id))[0];
    expect({ refreshed: row?.refreshed, sent: h.emu.control.counters().refreshes }).toEqual({
      refreshed: false,
      sent: 0,
    });
  });
});

/** What the five-minute timer does: measures the offset again and applies it. */
function realign(w: Warden): Promise<void> {
  return (w.clock as DatabaseAlignedClock).align();
}

/** An instance's store, with what its `clockOffsetMs` measures (the database's clock minus its host's). */
async function storeMeasuring(h: EngineHarness, measure: () => Promise<number | null>) {
  return interceptStore(await openSealedStore(h.kind, h.location, h.key), { clockOffsetMs: measure });
}

/**
 * A live holder whose refresh Slack has answered (its refresh token is spent there), held before it
 * stores the answer while its claim keeper keeps the lease renewed; `other` then asks for the same
 * credential, and gives up after waitTimeoutMs. Returns the other's row and how often Slack saw the
 * refresh token: once, unless the other took the live claim over.
 */
async function besideLiveHolder(
  h: EngineHarness,
  holder: { hostAheadMs: number; measured: number },
  other: { measure: () => Promise<number | null> },
): Promise<{ refreshed: boolean | undefined; presentations: number }> {
  const a = await h.installAndImport();
  h.clock.advance(11 * HOUR);
  const gate = completionGate();
  const holding = (
    await h.peer({
      clock: { now: () => h.clock.now() + holder.hostAheadMs },
      store: interceptStore(await openSealedStore(h.kind, h.location, h.key), {
        clockOffsetMs: async () => holder.measured,
        completeRefreshes: gate.completeRefreshes,
      }),
    })
  ).connections.refresh(a.id);
  await eventually(
    () => h.emu.control.counterTotals().refreshes,
    (n) => n === 1,
    { what: "Slack to answer the holder" },
  );
  const asking = await h.peer({
    store: await storeMeasuring(h, other.measure),
    timings: { ...FAST_TIMINGS, waitTimeoutMs: 300 },
  });
  const row = (await asking.connections.refresh(a.id))[0];
  gate.open();
  await holding;
  return { refreshed: row?.refreshed, presentations: h.emu.control.counters().maxPresentations };
}

/** The lease an aligned warden on a host `aheadMs` ahead of the database takes (FAST_TIMINGS' 5 s). */
async function leaseOfHostAhead(h: EngineHarness, aheadMs: number) {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const clock = new DatabaseAlignedClock({ now: () => h.clock.now() + aheadMs }, async () => -aheadMs, quiet);
  await clock.align();
  return clock.lease(5_000);
}

/**
 * A holder takes the claim with the lease `takeLease` gives once the credential is due, its refresh
 * reaches Slack (which rotates the pair), and it dies before storing the answer; `survivor`'s refresher
 * then passes every 5 s for four minutes. Returns the connection's end state, and how long after the
 * send the refresh token was presented again.
 */
async function afterDeadHolder(
  h: EngineHarness,
  takeLease: () => Promise<{ nowMs: number; leaseMs: number }>,
  survivor: Warden,
): Promise<{ status: string | undefined; reason: string | null | undefined; retriedAfterMs: number | null }> {
  const a = await h.installAndImport();
  h.clock.advance(11 * HOUR); // due
  const claimed = await h.store.claimRefresh(
    { connectionId: a.id, kind: "bot" },
    { owner: "holder-that-died", ...(await takeLease()), freshUntilMs: Number.MAX_SAFE_INTEGER },
  );
  if (claimed.kind !== "claimed") throw new Error(`not claimed: ${claimed.kind}`);
  const res = await fetch(`${h.emu.url}/api/oauth.v2.access`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "refresh_token",
      refresh_token: claimed.credential.refreshToken?.reveal() ?? "",
      client_id: h.emu.demoApp.clientId,
      client_secret: h.emu.demoApp.clientSecret,
    }),
  });
  expect(((await res.json()) as { ok: boolean }).ok).toBe(true);
  const sentAtMs = h.clock.now();
  let retriedAfterMs: number | null = null;
  for (let t = 0; t < 240_000; t += 5_000) {
    h.clock.advance(5_000);
    await survivor.refreshDue();
    if (retriedAfterMs === null && h.emu.control.counters().maxPresentations > 1)
      retriedAfterMs = h.clock.now() - sentAtMs;
  }
  const c = await h.store.getConnection(a.id);
  return { status: c?.status, reason: c?.reason, retriedAfterMs };
}

// Found by reviews of the change that aligned instants with the database's clock (branches review9 to
// review12); each test failed on the code it was written against.
describe.each(STORE_KINDS)("instances on one database whose timelines differ on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    vi.restoreAllMocks();
    await h?.close();
    h = null;
  });

  // The hosts' clocks agree with each other; the database's runs a minute behind them. An instance that
  // did not measure it (the previous release during a rolling deploy; or one whose first measurement
  // failed, keeping no offset) stays on its host's clock beside the aligned holder.
  for (const [what, measure] of [
    ["of the previous release (never aligned)", async () => null],
    [
      "whose first measurement failed",
      async () => {
        throw new Error("Connection terminated unexpectedly");
      },
    ],
  ] as const) {
    it(`an instance ${what} beside aligned ones does not take over a live holder's claim and spend its refresh token again`, async () => {
      h = await openEngineHarness(kind);
      expect(await besideLiveHolder(h, { hostAheadMs: 0, measured: -60_000 }, { measure })).toEqual({
        refreshed: false,
        presentations: 1,
      });
    });
  }

  // A holder on a host 3 minutes BEHIND the database (aligned: offset +180 s) must write an end a full
  // lease past the database's time, or an instance in step with the database reads the live claim as
  // lapsed the moment it is taken (a margin capped at a minute once let it).
  it("an instance in step with the database does not take over the live claim of a holder on a host 3 minutes behind it", async () => {
    h = await openEngineHarness(kind);
    expect(
      await besideLiveHolder(h, { hostAheadMs: -180_000, measured: 180_000 }, { measure: async () => 0 }),
    ).toEqual({ refreshed: false, presentations: 1 });
  });

  // The steady clock (probe spacing, a 429's pause) reads the host's clock, not the aligned one: a
  // re-measurement that moves the offset must not bring back, as a leap forward, the backward step the
  // steady clock absorbed.
  it("a 429's pause is not cut short when a re-measurement corrects a host clock stepped back (a clock without elapsedMs)", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    let behindMs = 0; // the host's wall clock, as NTP left it
    const host: Clock = { now: () => harness.clock.now() - behindMs }; // no monotonic reading
    // The database's clock is the harness's: measured against the host's, it reads `behindMs` ahead.
    const proc = await h.peer({ clock: host, store: await storeMeasuring(h, async () => behindMs) });
    h.emu.control.fault("oauth.v2.access", { kind: "ratelimited", retryAfterSeconds: 30, times: 1 });
    expect((await proc.connections.refresh(a.id))[0]).toMatchObject({ refreshed: false });
    behindMs = 60_000; // the host's clock steps back a minute
    h.clock.advance(2_000);
    expect((await proc.connections.refresh(b.id))[0]).toMatchObject({ refreshed: false }); // still paused
    await realign(proc); // the five-minute timer: the database now reads a minute ahead of this host
    h.clock.advance(2_000); // 4 s of the 30 s pause have passed
    const row = (await proc.connections.refresh(b.id))[0];
    expect({ refreshed: row?.refreshed, sent: h.emu.control.counters().refreshes }).toEqual({
      refreshed: false,
      sent: 0,
    });
  });

  // Due times and backoff ends are dated on the database's clock, so they are judged on it too: with the
  // database 3 minutes ahead of the hosts, judging them on the earlier clock (the lease's) made the
  // in-doubt retry of a lost answer land past Slack's grace window (120 s in the emulator).
  it("retries a refresh whose answer was lost within Slack's grace window, not the offset later", async () => {
    h = await openEngineHarness(kind);
    const a = await h.installAndImport();
    // A deployment whose database's clock runs three minutes ahead of its hosts' (and Slack's).
    const proc = await h.peer({ store: await storeMeasuring(h, async () => 180_000) });
    h.clock.advance(11 * HOUR); // due
    h.emu.control.fault("oauth.v2.access", { kind: "lost_response", times: 1 });
    await proc.refreshDue(); // Slack rotated the pair; the answer never came back
    expect(grants(h)).toBe(1);
    // The refresher's passes over the next four minutes, 5 s apart.
    for (let t = 0; t < 240_000; t += 5_000) {
      h.clock.advance(5_000);
      await proc.refreshDue();
    }
    const c = await h.store.getConnection(a.id);
    expect({ status: c?.status, reason: c?.reason, grants: grants(h) }).toEqual({
      status: "active",
      reason: null,
      grants: 2,
    });
  });

  // A holder on a host 3 minutes ahead of the database dies after its refresh reached Slack. Its lease's
  // margin for unaligned readers on hosts like its own is a minute at most (an unbounded one kept the
  // credential from the others for the whole 3 minutes, past the grace window).
  it("a holder on a host 3 minutes ahead that dies mid-refresh is retried within Slack's grace window", async () => {
    const harness = await openEngineHarness(kind);
    h = harness;
    const outcome = await afterDeadHolder(harness, () => leaseOfHostAhead(harness, 180_000), harness.warden);
    expect({ status: outcome.status, reason: outcome.reason }).toEqual({ status: "active", reason: null });
  });

  // A holder in step with the database dies after its refresh reached Slack. The survivor's host runs 3
  // minutes behind (aligned: offset +180 s): it judges leases at most a minute behind the database's
  // time, not on its host's clock 3 minutes behind.
  it("a survivor on a host 3 minutes behind the database retries a dead holder's refresh within Slack's grace window", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const survivor = await h.peer({
      clock: { now: () => harness.clock.now() - 180_000 },
      store: await storeMeasuring(h, async () => 180_000),
    });
    // The holder in step with the database: its lease ends 5 s on (FAST_TIMINGS.leaseMs).
    const outcome = await afterDeadHolder(
      h,
      async () => ({ nowMs: harness.clock.now(), leaseMs: 5_000 }),
      survivor,
    );
    expect({ status: outcome.status, reason: outcome.reason }).toEqual({ status: "active", reason: null });
  });

  // The holder's margin (its host 3 minutes ahead: its end a lease and a minute past the database's time)
  // and the survivor's (its host 20 s behind: it judges 20 s behind the database's time) add up. A review
  // (branch review12) found them adding to two minutes for hosts 3 minutes on either side, past Slack's
  // grace window; capping each at 30 s would close that, but would leave a mixed fleet during a rolling
  // deploy unsafe (a second spend) once the hosts agree and the database is 30-60 s off them, which is
  // safe today. Kept at a minute each: the README states the bound. This is the bound's inside: the retry
  // comes within a lease, a minute and the survivor's 20 s.
  it("a survivor on a host 20 s behind the database retries, within Slack's grace window, the refresh of a dead holder on a host 3 minutes ahead", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const survivor = await h.peer({
      clock: { now: () => harness.clock.now() - 20_000 },
      store: await storeMeasuring(h, async () => 20_000),
    });
    const outcome = await afterDeadHolder(h, () => leaseOfHostAhead(harness, 180_000), survivor);
    expect({ status: outcome.status, reason: outcome.reason }).toEqual({ status: "active", reason: null });
    expect(outcome.retriedAfterMs).not.toBeNull();
    expect(outcome.retriedAfterMs).toBeLessThanOrEqual(5_000 + 60_000 + 20_000);
  });
});

describe("the offset's measurement on postgres", () => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    vi.restoreAllMocks();
    await h?.close();
    h = null;
  });

  // Timed around one round trip, the midpoint is wrong by up to half of it: an answer handled late (an
  // event loop busy for a few seconds, as a server under load or a long GC pause has it; a pgbouncer
  // queue before the statement runs) must not read as an offset and be applied although the host's
  // clock and the database's agree (from a review, branch review9).
  it("an answer handled 2.5 s late (a busy event loop) is not applied as an offset when the clocks agree", async () => {
    h = await openEngineHarness("postgres");
    const realQuery = pg.Client.prototype.query;
    vi.spyOn(pg.Client.prototype, "query").mockImplementation(function (this: pg.Client, ...args: unknown[]) {
      const sent = (realQuery as (...a: unknown[]) => unknown).apply(this, args);
      const text = typeof args[0] === "string" ? args[0] : "";
      if (!text.includes("clock_timestamp()")) return sent;
      return (sent as Promise<unknown>).then((answer) => {
        // The event loop is busy when the answer arrives: it is handled 2.5 s later.
        const until = performance.now() + 2_500;
        while (performance.now() < until) {
          /* busy */
        }
        return answer;
      });
    } as typeof realQuery);
    const proc = await h.peer(); // the database and this host share one clock: no offset
    vi.restoreAllMocks();
    expect(proc.clock.now() - h.clock.now()).toBe(0);
  }, 20_000);
});
