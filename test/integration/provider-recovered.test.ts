// The all-clear of a provider flag: Slack refused our client secret (bad_client_secret), the secret is
// fixed, a probe goes through and the flag is lifted. The lift is announced once per flag episode
// across processes: the `provider.recovered` webhook, `provider_recovered` in the process that lifted
// it, and one info line there.
import { afterEach, describe, expect, it } from "vitest";
import { STALE_FLAG_MS } from "../../src/core/provider-flag-times.js";
import type { Warden } from "../../src/engine/warden.js";
import type { ProviderRecoveredEvent } from "../../src/engine/warden-events.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { outboxStore } from "../helpers/provider-flag-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;
const PROBE_SPACING = 11_000; // past a flagged provider's 10 s between callers' probes
const iso = (ms: number) => new Date(ms).toISOString();

/** Every webhook written since the last call, as [type, data] (leased away for ten years). */
async function newWebhooks(h: EngineHarness): Promise<[string, Record<string, unknown>][]> {
  const rows = await h.store.claimOutbox({
    owner: "recovered-tests",
    nowMs: h.clock.now() + 365 * 24 * HOUR,
    leaseMs: 10 * 365 * 24 * HOUR,
    limit: 1_000,
  });
  return rows.map((r) => [r.type, r.payload]);
}

const ofType = (hooks: [string, Record<string, unknown>][], type: string) =>
  hooks.filter(([t]) => t === type).map(([, data]) => data);

/** The info lines of lifts (a probe's, or a stale flag's), whichever warden of the harness logged them. */
const liftLines = (h: EngineHarness) =>
  h.logs
    .map((l) => JSON.parse(l) as { level: string; msg?: string })
    .filter((l) => l.level === "info" && /flag lifted|lifted a provider flag/.test(l.msg ?? ""));

function listen(w: Warden, heard: ProviderRecoveredEvent[]): void {
  w.on("provider_recovered", (e) => heard.push(e));
}

/** Slack refuses the next grant's client credentials (the emulator's fault: the secret is "wrong" once). */
function refuseNextGrant(h: EngineHarness): void {
  h.emu.control.fault("oauth.v2.access", { kind: "error", error: "bad_client_secret", times: 1 });
}

describe.each(STORE_KINDS)("a provider flag's all-clear on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("two wardens whose probes go through at once: one lift, one webhook, one emission, one log line", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const one = (await h.installAndImport()).id;
    const two = (await h.installAndImport()).id;
    const lifts: boolean[] = [];
    const counted = async () =>
      interceptStore(await outboxStore(harness), {
        liftProviderFlag: async (real, ...args) => {
          const lifted = await real(...args);
          lifts.push(lifted);
          return lifted;
        },
      });
    const a = await h.peer({ store: await counted() });
    const heardA: ProviderRecoveredEvent[] = [];
    listen(a, heardA);
    refuseNextGrant(h);
    await a.connections.refresh(one).catch(() => undefined);
    const flaggedAt = h.clock.now();
    expect(ofType(await newWebhooks(h), "provider.misconfigured")).toHaveLength(1);
    // Another process starts: it reads the flag and holds back too.
    const b = await h.peer({ store: await counted() });
    const heardB: ProviderRecoveredEvent[] = [];
    listen(b, heardB);
    expect((await b.providerState("slack")).appliesHere).toBe(true);

    // The secret is fixed at Slack (the fault is spent): both probe at once, both go through.
    h.clock.advance(PROBE_SPACING);
    const rows = await Promise.all([a.connections.refresh(one), b.connections.refresh(two)]);
    expect(rows.flat().map((r) => r.refreshed)).toEqual([true, true]);
    expect(lifts.sort()).toEqual([false, true]); // both tried; one found the flag
    expect([...heardA, ...heardB]).toEqual([{ provider: "slack", atMs: h.clock.now() }]);
    expect(liftLines(h)).toHaveLength(1);
    expect(ofType(await newWebhooks(h), "provider.recovered")).toEqual([
      { provider: "slack", since: iso(flaggedAt), at: iso(h.clock.now()) },
    ]);
    expect((await h.store.getProviderState("slack"))?.status).toBe("ok");

    // Later successes lift nothing and announce nothing.
    h.clock.advance(PROBE_SPACING);
    await Promise.all([a.connections.refresh(one), b.connections.refresh(two)]);
    expect(heardA.length + heardB.length).toBe(1);
    expect(await newWebhooks(h)).toEqual([]);
  });

  it("a flag lifted and raised again is a new episode: announced again", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    const w = await h.peer({ store: await outboxStore(h) });
    const heard: ProviderRecoveredEvent[] = [];
    listen(w, heard);
    const since: number[] = [];
    const lifted: number[] = [];
    for (let episode = 0; episode < 2; episode++) {
      refuseNextGrant(h);
      await w.connections.refresh(id).catch(() => undefined);
      since.push(h.clock.now());
      h.clock.advance(PROBE_SPACING);
      await w.connections.refresh(id);
      lifted.push(h.clock.now());
      h.clock.advance(PROBE_SPACING);
    }
    expect(heard).toEqual(lifted.map((atMs) => ({ provider: "slack", atMs })));
    expect(liftLines(h)).toHaveLength(2);
    const hooks = await newWebhooks(h);
    expect(ofType(hooks, "provider.misconfigured")).toHaveLength(2);
    expect(
      ofType(hooks, "provider.recovered").sort((x, y) => String(x["at"]).localeCompare(String(y["at"]))),
    ).toEqual([0, 1].map((i) => ({ provider: "slack", since: iso(since[i] ?? 0), at: iso(lifted[i] ?? 0) })));
  });

  it("other credentials' success lifts nothing; their flag, once stale, is announced by the process that lifts it", async () => {
    h = await openEngineHarness(kind);
    await h.installAndImport();
    await h.installAndImport();
    const { clientId } = h.emu.demoApp;
    const oldSecret = await h.peer({
      providers: { slack: { clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url } },
      store: await outboxStore(h),
    });
    const newSecret = await h.peer({ store: await outboxStore(h) });
    const heardOld: ProviderRecoveredEvent[] = [];
    const heardNew: ProviderRecoveredEvent[] = [];
    listen(oldSecret, heardOld);
    listen(newSecret, heardNew);
    h.clock.advance(11 * HOUR); // every token inside its refresh margin
    await oldSecret.refreshDue(); // refused: the flag names the old secret
    const flaggedAt = h.clock.now();
    expect(ofType(await newWebhooks(h), "provider.misconfigured")).toHaveLength(1);
    const before = h.emu.control.counters().refreshes;
    await newSecret.refreshDue(); // the new secret refreshes everything: not a lift of the old one's flag
    expect(h.emu.control.counters().refreshes - before).toBe(2);
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");
    expect([heardOld, heardNew, await newWebhooks(h), liftLines(h)]).toEqual([[], [], [], []]);

    // The old process is gone; once nobody has reported its refusal for long, the next sync lifts it.
    await oldSecret.close();
    h.clock.advance(STALE_FLAG_MS + 1_000);
    await newSecret.refreshDue();
    expect((await h.store.getProviderState("slack"))?.status).toBe("ok");
    expect(heardNew).toEqual([{ provider: "slack", atMs: h.clock.now() }]);
    expect(liftLines(h)).toHaveLength(1);
    expect(ofType(await newWebhooks(h), "provider.recovered")).toEqual([
      { provider: "slack", since: iso(flaggedAt), at: iso(h.clock.now()) },
    ]);
  });

  it("a local warden (the CLI's) announces the lift of its own flag, writing nothing", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    const w = await h.peer({ providerState: "local", store: await outboxStore(h) });
    const heard: ProviderRecoveredEvent[] = [];
    listen(w, heard);
    refuseNextGrant(h);
    await w.connections.refresh(id).catch(() => undefined);
    h.clock.advance(PROBE_SPACING);
    await w.connections.refresh(id);
    expect(heard).toEqual([{ provider: "slack", atMs: h.clock.now() }]);
    expect(liftLines(h)).toHaveLength(1);
    expect(await h.store.getProviderState("slack")).toBeNull();
    expect(await newWebhooks(h)).toEqual([]);
  });
});
