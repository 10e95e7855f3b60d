// Instances on hosts whose clocks disagree read their instants off the database's clock: a host whose
// clock runs a minute ahead does not see a live holder's lease as lapsed and spend its refresh token.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, FAST_TIMINGS, openEngineHarness } from "../helpers/engine-harness.js";
import { interceptStore } from "../helpers/intercept-store.js";
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
