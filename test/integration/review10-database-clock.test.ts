// Review findings (branch review10) on the database-aligned clock as 7891e59 left it. Each test fails on
// 7891e59 and passes on its parent (100aa25).
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../../src/core/ports.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { grants } from "../helpers/provider-flag-fixtures.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("a database whose clock runs ahead of the hosts' on %s (review10)", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  // The warden dates every due time and backoff end on the database's clock (ctx.clock.now(), aligned),
  // but claimDue is handed ctx.leaseWindow().nowMs, the EARLIER of the host's and the database's clocks,
  // and judges `next_run_at_ms <= nowMs` with it as well as the lease. With the database 3 minutes
  // ahead of the hosts (and of Slack), every due refresh and every backoff retry comes 3 minutes late:
  // the in-doubt retry meant to land inside Slack's grace window (at most 15 s after a lost answer)
  // lands past it (120 s in the emulator), and the connection is lost as refresh_response_lost.
  it("retries a refresh whose answer was lost within Slack's grace window, not the offset later", async () => {
    h = await openEngineHarness(kind);
    const a = await h.installAndImport();
    // A deployment whose database's clock runs three minutes ahead of its hosts' (and Slack's).
    const proc = await h.peer({
      store: interceptStore(await openSealedStore(kind, h.location, h.key), {
        clockOffsetMs: async () => 180_000,
      }),
    });
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

  // A holder on a host whose clock runs three minutes ahead of the database's (and of Slack's) writes
  // its lease to end leaseMs + |offset| on (DatabaseAlignedClock.lease): 5 s + 180 s. Its instance
  // dies after its refresh reached Slack. The other instances (hosts in step with the database, aligned
  // or not, judge the lease by the database's time) may take the claim over only once those 185 s have
  // passed, past Slack's grace window (120 s in the emulator): the retry is refused and the connection
  // is lost as refresh_response_lost. On 100aa25 the lease ended 5 s on and the retry recovered it. The
  // stretch protects an unaligned reader only when its host's clock is as far ahead as the holder's.
  it("a holder on a host 3 minutes ahead that dies mid-refresh is retried within Slack's grace window", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const a = await h.installAndImport();
    h.clock.advance(11 * HOUR); // due
    const hostAhead: Clock = { now: () => harness.clock.now() + 180_000 };
    const holder = await h.peer({
      clock: hostAhead,
      store: interceptStore(await openSealedStore(kind, h.location, h.key), {
        clockOffsetMs: async () => -180_000, // measured: the database is 3 minutes behind this host
      }),
    });
    // The claim the holder's refresh takes (refresh.ts: claimRefresh with ctx.leaseWindow()).
    const leaseMs = 5_000; // FAST_TIMINGS.leaseMs
    const hc = holder.clock as Clock & { lease?: (ms: number) => { nowMs: number; leaseMs: number } };
    const lease = hc.lease?.(leaseMs) ?? { nowMs: hc.now(), leaseMs };
    const claimed = await h.store.claimRefresh(
      { connectionId: a.id, kind: "bot" },
      { owner: "holder-that-died", ...lease, freshUntilMs: Number.MAX_SAFE_INTEGER },
    );
    if (claimed.kind !== "claimed") throw new Error(`not claimed: ${claimed.kind}`);
    // Its request reached Slack, which rotated the pair; then the holder's instance died.
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
    await holder.close();
    // The survivor's refresher passes over the next four minutes, 5 s apart.
    for (let t = 0; t < 240_000; t += 5_000) {
      h.clock.advance(5_000);
      await h.warden.refreshDue();
    }
    const c = await h.store.getConnection(a.id);
    expect({ status: c?.status, reason: c?.reason }).toEqual({ status: "active", reason: null });
  });
});
