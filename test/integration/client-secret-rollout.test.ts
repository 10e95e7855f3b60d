// A rolling change of the client secret: for a while some processes send the old secret (refused,
// bad_client_secret) and some the new one. The shared provider flag names the credentials refused, so
// the processes on the new secret are not held back by the old one's refusals, and nobody lifts and
// raises the flag in turn (each raise is a provider.misconfigured webhook that pages someone).
import { afterEach, describe, expect, it } from "vitest";
import { STALE_FLAG_MS } from "../../src/core/provider-flag-times.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { refusedClient } from "../helpers/store-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("a rolling client secret change on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("the old secret's refusals hold back only the processes that send it, and its flag goes once they are gone", async () => {
    h = await openEngineHarness(kind);
    const ids = [(await h.installAndImport()).id, (await h.installAndImport()).id];
    const { clientId } = h.emu.demoApp;
    const oldSecret = await h.peer({
      providers: { slack: { clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url } },
    });
    const raised: unknown[] = [];
    oldSecret.on("provider_misconfigured", (e) => raised.push(e));
    h.clock.advance(11 * HOUR); // every token inside its refresh margin
    await oldSecret.refreshDue();
    expect(raised).toHaveLength(1);
    const flagged = await h.store.getProviderState("slack");
    expect(flagged?.status).toBe("misconfigured");
    expect(flagged?.clientFingerprint).toEqual(expect.any(String));

    // A process on the new secret starts mid-rollout: it refreshes every due credential, not one probe
    // a minute, and its successes do not lift a flag that is not about its credentials.
    const newSecret = await h.peer();
    const before = h.emu.control.counters().refreshes;
    await newSecret.refreshDue();
    expect(h.emu.control.counters().refreshes - before).toBe(ids.length);
    for (const id of ids) expect((await newSecret.connections.get(id)).status).toBe("active");
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");

    // The old process is still running: its next refusal raises nothing new.
    h.clock.advance(13 * HOUR);
    await oldSecret.refreshDue();
    await oldSecret.connections.refresh(ids[0] ?? "").catch(() => undefined);
    expect(raised).toHaveLength(1);
    const reported = (await h.store.getProviderState("slack"))?.assertedAtMs;
    expect(reported).toBe(h.clock.now());

    // Within the stale bound nothing is lifted; once no process has reported the refusal for longer,
    // the next process on the new secret to look lifts it.
    await oldSecret.close();
    h.clock.advance(STALE_FLAG_MS - 1_000);
    await h.peer();
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");
    h.clock.advance(2_000);
    await h.peer();
    const lifted = await h.store.getProviderState("slack");
    expect([lifted?.status, lifted?.lastError]).toEqual(["ok", null]);
    expect(lifted?.clientFingerprint).not.toBe(flagged?.clientFingerprint);
  });

  it("a flag that names no credentials (recorded before flags named them) still holds every process back", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    await h.store.setProviderState(refusedClient(h.clock.now()));
    const w = await h.peer();
    h.clock.advance(11 * HOUR);
    const before = h.emu.control.counters().refreshes;
    await w.refreshDue(); // one probe
    await w.refreshDue(); // the next probe is a minute away
    expect(h.emu.control.counters().refreshes - before).toBe(1);
    // Its probe succeeded: the flag is lifted, as before flags named credentials.
    expect((await h.store.getProviderState("slack"))?.status).toBe("ok");
    expect((await w.connections.get(id)).status).toBe("active");
  });
});
