// A process refused its client credentials that runs no refresher (a web process calling getToken,
// its tokens still valid and served from memory) keeps reporting the refusal: its flag never goes
// stale for another process to lift, so nobody is paged again while it runs.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, FAST_TIMINGS, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { gate, misconfiguredWebhooks, outboxStore } from "../helpers/provider-flag-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

describe.each(STORE_KINDS)("a refused process without a refresher on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("reports its refusal through quiet minutes: the flag does not go stale, and its next refusal pages nobody", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    const web = await h.peer({
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url },
      },
      store: await outboxStore(h),
      timings: { ...FAST_TIMINGS, providerSyncMs: 10 },
    });
    // On the right secret: its refresher's sync lifts a flag of other credentials gone quiet.
    const worker = await h.peer({ store: await outboxStore(h) });
    await web.connections.refresh(a.id);
    expect(await misconfiguredWebhooks(h)).toBe(1);
    // Six quiet minutes, a minute at a time: nothing calls the web process.
    for (let minute = 1; minute <= 6; minute++) {
      h.clock.advance(61_000);
      const now = h.clock.now();
      await eventually(
        async () => (await harness.store.getProviderState("slack"))?.assertedAtMs,
        (at) => at === now,
        { what: `the web process to report its refusal at minute ${minute}` },
      );
      await worker.refreshDue();
    }
    await web.connections.refresh(b.id);
    const state = await h.store.getProviderState("slack");
    expect({ status: state?.status, pagedAgain: await misconfiguredWebhooks(h) }).toEqual({
      status: "misconfigured",
      pagedAgain: 0,
    });
  });
});

// Review findings (branch review7): each test below fails on the code it was written against.
describe.each(STORE_KINDS)("the refusal heartbeat on %s (review)", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  function wrongSecret(harness: EngineHarness) {
    return {
      slack: {
        clientId: harness.emu.demoApp.clientId,
        clientSecret: "the-old-secret",
        baseUrl: harness.emu.url,
      },
    };
  }

  it("close() returns within its timeout while a report is stuck on the store", async () => {
    h = await openEngineHarness(kind);
    const a = await h.installAndImport();
    const stuck = gate();
    let reports = 0;
    const web = await h.peer({
      providers: wrongSecret(h),
      store: interceptStore(await outboxStore(h), {
        // A store that stops answering (a lost connection, a lock held elsewhere).
        reassertProviderFlag: async (real, ...args) => {
          reports++;
          await stuck.wait;
          return real(...args);
        },
      }),
      timings: { ...FAST_TIMINGS, providerSyncMs: 10 },
    });
    let closing: Promise<void> = Promise.resolve();
    try {
      await web.connections.refresh(a.id); // refused: the heartbeat starts reporting
      await eventually(
        () => reports,
        (n) => n > 0,
        { what: "a report on its way to the store" },
      );
      let closed = false;
      closing = web.close({ timeoutMs: 100 }).then(() => {
        closed = true;
      });
      await eventually(
        () => closed,
        (c) => c,
        { timeoutMs: 3_000, what: "close({ timeoutMs: 100 }) to return" },
      );
    } finally {
      stuck.open();
      await closing; // before the harness closes the same store
    }
  });

  it("keeps reporting its refusal while its refresher's passes are further apart than providerSyncMs", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const a = await h.installAndImport();
    const web = await h.peer({
      providers: wrongSecret(h),
      store: await outboxStore(h),
      timings: { ...FAST_TIMINGS, providerSyncMs: 10 },
    });
    // A refresher that looks for due credentials every ten minutes (a quiet deployment).
    web.startRefresher({ intervalMs: 10 * 60_000 });
    await web.connections.refresh(a.id);
    expect((await web.providerState("slack")).appliesHere).toBe(true);
    h.clock.advance(61_000);
    const now = h.clock.now();
    await eventually(
      async () => (await harness.store.getProviderState("slack"))?.assertedAtMs,
      (at) => at === now,
      { what: "the refused process to re-date its flag a minute on" },
    );
  });

  it("a report the store refuses is logged, not thrown, and the next beat reports again", async () => {
    h = await openEngineHarness(kind);
    const harness = h;
    const a = await h.installAndImport();
    let failures = 1;
    const web = await h.peer({
      providers: wrongSecret(h),
      store: interceptStore(await outboxStore(h), {
        reassertProviderFlag: async (real, ...args) => {
          if (failures-- > 0) throw new Error("connection terminated unexpectedly");
          return real(...args);
        },
      }),
      timings: { ...FAST_TIMINGS, providerSyncMs: 10 },
    });
    await web.connections.refresh(a.id); // refused: the heartbeat starts reporting
    h.clock.advance(61_000);
    const now = h.clock.now();
    await eventually(
      async () => (await harness.store.getProviderState("slack"))?.assertedAtMs,
      (at) => at === now,
      { what: "a later beat to re-date the flag" },
    );
    expect(
      harness.logs.filter((l) => l.includes("could not report this process's refused client credentials")),
    ).toHaveLength(1);
  });

  it.each([0, -1, Number.NaN])("refuses a providerSyncMs of %s at creation", async (providerSyncMs) => {
    h = await openEngineHarness(kind);
    // 0, negative or NaN: setInterval runs the heartbeat every millisecond (a store round trip each,
    // a write transaction on SQLite), and the refresher's `now + NaN` never syncs again.
    await expect(h.peer({ timings: { ...FAST_TIMINGS, providerSyncMs } })).rejects.toMatchObject({
      code: "config_invalid",
    });
  });
});
