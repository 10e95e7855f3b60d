// Slack limits oauth.v2.access per app, not per process: a 429 one instance got pauses the others'
// refreshes too (they adopt it at their next provider sync), instead of each sending into the limit.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { grants } from "../helpers/provider-flag-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("a 429 shared by every instance on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("pauses another instance's refresher for the Retry-After, and no longer", async () => {
    h = await openEngineHarness(kind);
    const first = await h.installAndImport();
    for (let i = 0; i < 3; i++) await h.installAndImport();
    const other = await h.peer();
    h.clock.advance(11 * HOUR); // all due
    h.emu.control.fault("oauth.v2.access", { kind: "ratelimited", retryAfterSeconds: 30, times: 1 });
    await h.warden.getToken(first.id); // the 429, in this instance
    expect(grants(h)).toBe(1);
    await other.refreshDue(); // its sync adopts the pause: nothing sent
    h.clock.advance(20_000);
    await other.refreshDue();
    const duringPause = grants(h);
    h.clock.advance(11_000); // the Retry-After is over
    await other.refreshDue();
    await other.refreshDue();
    expect({ duringPause, after: grants(h), refreshes: h.emu.control.counters().refreshes }).toEqual({
      duringPause: 1,
      after: 5,
      refreshes: 4,
    });
  });

  it("a pause recorded by a host whose clock runs far ahead pauses others a minute at most", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 2; i++) await h.installAndImport();
    await h.store.pauseProvider({
      provider: "slack",
      untilMs: h.clock.now() + 24 * HOUR,
      error: "ratelimited",
    });
    const other = await h.peer(); // adopts it at startup
    h.clock.advance(11 * HOUR);
    // The harness's clock moved 11 h; the adopted pause is a minute on the steady clock, long over.
    await other.refreshDue();
    expect(h.emu.control.counters().refreshes).toBe(2);
  });
});
