// resolveTimings accepts every duration up to a day, as the README says. A timing accepted there must
// behave as given, not as a 1 ms timer: Node fires a delay longer than 2³¹−1 ms after 1 ms, and timings
// are added to (a provider call's timer to its slice width, close()'s default wait to 5 s). From a
// review (branch review8), when the bound was 2³¹−1 itself.
import { afterEach, describe, expect, it } from "vitest";
import { MAX_TIMING_MS } from "../../src/core/timing-bounds.js";
import { type EngineHarness, FAST_TIMINGS, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { grants } from "../helpers/provider-flag-fixtures.js";

const HOUR = 3_600_000;

describe("timings at the documented limit", () => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a providerTimeoutMs of a day (the most accepted) does not abort a provider call that answers in 50 ms", async () => {
    h = await openEngineHarness("sqlite", {
      warden: { timings: { ...FAST_TIMINGS, leaseMs: MAX_TIMING_MS, providerTimeoutMs: MAX_TIMING_MS } },
    });
    const { id } = await h.installAndImport();
    h.clock.advance(11 * HOUR); // due
    h.emu.control.fault("oauth.v2.access", { kind: "hang", hangMs: 50, times: 1 });
    const [row] = await h.warden.connections.refresh(id, { kind: "bot" });
    // With the bound at 2³¹−1 the call was aborted after ~1 ms (withTimeout's timer is providerTimeoutMs
    // plus its slice width, past Node's limit), so the refresh read as a timeout and its answer was lost.
    expect({ refreshed: row?.refreshed, error: row?.error }).toEqual({ refreshed: true, error: null });
    expect(h.emu.control.counters().refreshes).toBe(1);
  });

  it("close() with a providerTimeoutMs of a day (the most accepted) waits for a refresh in flight, as it does by default", async () => {
    // With the bound at 2³¹−1, close()'s default wait (providerTimeoutMs + 5 s) could pass Node's limit
    // and fire after 1 ms.
    h = await openEngineHarness("sqlite", {
      warden: { timings: { ...FAST_TIMINGS, leaseMs: MAX_TIMING_MS, providerTimeoutMs: MAX_TIMING_MS } },
    });
    const { id } = await h.installAndImport();
    h.clock.advance(13 * HOUR); // expired: getToken must refresh
    h.emu.control.fault("oauth.v2.access", { kind: "hang", hangMs: 100, times: 1 });
    const token = h.warden.getToken(id).then(
      (t) => ({ ok: true, expiresAtMs: t.expiresAt?.getTime() ?? null }),
      (error: unknown) => ({ ok: false, error: String(error) }),
    );
    await eventually(
      () => grants(h as EngineHarness),
      (n) => n === 1,
      { what: "the grant in flight" },
    );
    await h.warden.close(); // must wait for the refresh in flight to store its outcome
    expect(await token).toMatchObject({ ok: true });
    // The rotated pair is in the store, not lost with a store closed under the refresh.
    expect((await h.store.getConnection(id))?.credentials[0]?.expiresAtMs).toBeGreaterThan(h.clock.now());
  });
});
