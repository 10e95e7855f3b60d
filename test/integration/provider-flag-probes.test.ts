// Provider flags, more hard cases (from a second review): a refused process the flag no longer names
// keeps it fresh; claims taken ahead are not sent once the credentials are refused; a probe answered
// about the token (Slack checked the client first) lifts the flag.
import { afterEach, describe, expect, it } from "vitest";
import { STALE_FLAG_MS } from "../../src/core/provider-flag-times.js";
import type { Warden } from "../../src/engine/warden.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { grants, misconfiguredWebhooks, outboxStore } from "../helpers/provider-flag-fixtures.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("provider flag flaps on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  async function withSecret(harness: EngineHarness, clientSecret: string): Promise<Warden> {
    return harness.peer({
      providers: {
        slack: { clientId: harness.emu.demoApp.clientId, clientSecret, baseUrl: harness.emu.url },
      },
      store: await outboxStore(harness),
    });
  }

  it("two refused secrets: when the process named by the flag goes away, the other (still refused, still running) does not let it go stale and page again", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 3; i++) await h.installAndImport();
    const oldSecret = await withSecret(h, "the-old-secret");
    const typo = await withSecret(h, "the-new-secret-mistyped");
    const newSecret = await h.peer({ store: await outboxStore(h) });
    h.clock.advance(11 * HOUR); // all due

    await oldSecret.refreshDue(); // refused: flag names the old secret; the first page
    await typo.refreshDue(); // refused too: the flag now names the typo
    expect(await misconfiguredWebhooks(h)).toBe(1);
    // The typo is fixed: that process is replaced by one on the right secret, which refreshes all.
    await typo.close();
    await newSecret.refreshDue();
    // The old-secret process keeps running (a slow rollout) with nothing due: it syncs every few
    // seconds, still refused itself.
    for (let waited = 0; waited <= STALE_FLAG_MS; waited += 60_000) {
      h.clock.advance(60_000);
      await oldSecret.refreshDue();
      await newSecret.refreshDue();
    }
    // A process is still refused, and reports so at every sync: the shared state should say so.
    const status = (await h.store.getProviderState("slack"))?.status;
    // Hours later the old process wins a due credential again: same rollout, same refused secret.
    h.clock.advance(11 * HOUR);
    await oldSecret.refreshDue();
    expect({ status, pagedAgain: await misconfiguredWebhooks(h) }).toEqual({
      status: "misconfigured",
      pagedAgain: 0,
    });
  });
});

describe.each(STORE_KINDS)("the refresher's claims ahead after a refusal on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a claim waiting for a slot is not sent once the provider has refused our client credentials", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 4; i++) await h.installAndImport();
    const bad = await h.peer({
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url },
      },
    });
    const refused: unknown[] = [];
    bad.on("provider_misconfigured", (e) => refused.push(e));
    h.clock.advance(11 * HOUR); // all four due
    // One slot: one call in flight, one claim waiting for the slot (claimed ahead).
    bad.startRefresher({ intervalMs: 5, concurrencyPerProvider: 1 });
    const harness = h;
    await eventually(
      () => refused.length,
      (n) => n > 0,
      { what: "the first refusal" },
    );
    await new Promise((resolve) => setTimeout(resolve, 300)); // passes keep running (the clock does not move)
    await bad.stopRefresher();
    // The first refusal flags the provider: the claim waiting behind it is handed back, not sent
    // with credentials just refused (with the default 16 slots, 16 to 32 such calls per flagging).
    expect(grants(harness)).toBe(1);
  });
});

describe.each(STORE_KINDS)("a probe answered invalid_refresh_token on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("lifts the flag (Slack checked our client id and secret before the token), as a client_id_mismatch answer does", async () => {
    h = await openEngineHarness(kind);
    const { id, install } = await h.installAndImport();
    // A flag naming no credentials (recorded before 0009): every process is held back by it.
    await h.store.setProviderState({
      provider: "slack",
      status: "misconfigured",
      reason: "provider_misconfigured",
      lastError: "bad_client_secret",
      sinceMs: h.clock.now(),
    });
    const w = await h.peer();
    h.clock.advance(1_000); // the process probes after it learnt of the flag
    expect((await w.providerState("slack")).appliesHere).toBe(true);
    // The probe happens to land on a credential whose refresh token was revoked.
    h.emu.control.revokeToken(String(install["refresh_token"]));
    const [row] = await w.connections.refresh(id);
    expect(row).toMatchObject({ refreshed: false, error: "invalid_refresh_token" });
    // Slack accepted the client credentials (bad_client_secret would have come first).
    const state = await w.providerState("slack");
    expect({ status: state.status, appliesHere: state.appliesHere }).toEqual({
      status: "ok",
      appliesHere: false,
    });
  });
});

describe.each(STORE_KINDS)("a burst of refusals on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("announces once, whichever refusal's record changes the shared status", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 3; i++) await h.installAndImport();
    let first = true;
    // The first refusal's record is slow: a later one's would change the status first.
    const store = interceptStore(await openSealedStore(kind, h.location, h.key), {
      setProviderState: async (real, ...args) => {
        if (first) {
          first = false;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        return real(...args);
      },
    });
    const bad = await h.peer({
      store,
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url },
      },
    });
    const raised: unknown[] = [];
    bad.on("provider_misconfigured", (e) => raised.push(e));
    h.clock.advance(11 * HOUR);
    await Promise.all(
      (await bad.connections.list({})).items.map((c) => bad.connections.refresh(c.id).catch(() => undefined)),
    );
    expect(raised).toHaveLength(1);
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");
  });
});

describe.each(STORE_KINDS)("a sync that reads the shared flag while a refusal arrives on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("keeps the process held back: the refusal is newer than what the sync read", async () => {
    h = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await h.installAndImport()).id);
    let hold: Promise<void> | null = null;
    let reading = false;
    // The sync's read happens before the refusal (no flag yet), and its answer arrives after.
    const store = interceptStore(await openSealedStore(kind, h.location, h.key), {
      getProviderState: async (real, ...args) => {
        const state = await real(...args);
        if (hold !== null) {
          reading = true;
          await hold;
        }
        return state;
      },
    });
    const bad = await h.peer({
      store,
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url },
      },
    });
    h.clock.advance(11 * HOUR);
    let release = () => {};
    hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const pass = bad.refreshDue(); // its sync reads the (unflagged) state, then waits
    await eventually(
      () => reading,
      (x) => x,
      { what: "the sync's read" },
    );
    hold = null;
    await bad.connections.refresh(ids[0] ?? "").catch(() => undefined); // refused: held back, flagged
    const before = grants(h);
    release();
    await pass; // the sync goes on with what it read, then the pass claims
    expect(grants(h) - before).toBe(0);
  });
});
