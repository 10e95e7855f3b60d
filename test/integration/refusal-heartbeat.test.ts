// A process refused its client credentials that runs no refresher (a web process calling getToken,
// its tokens still valid and served from memory) keeps reporting the refusal: its flag never goes
// stale for another process to lift, so nobody is paged again while it runs.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, FAST_TIMINGS, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { misconfiguredWebhooks, outboxStore } from "../helpers/provider-flag-fixtures.js";
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
