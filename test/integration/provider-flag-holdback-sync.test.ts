// A process held back at the refusal's answer stays held back through a refresher sync that runs
// before flagProvider has recorded the refusal (it waits for the hand-back's write), when the store
// shows no flag yet: the pass sends nothing with the credentials just refused.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { grants } from "../helpers/provider-flag-fixtures.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("a sync during the refusal's hand-back on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a refresher pass that syncs while a caller's refusal is being handed back sends nothing with the refused credentials", async () => {
    h = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await h.installAndImport()).id);
    let entered = false;
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let first = true;
    const store = interceptStore(await openSealedStore(kind, h.location, h.key), {
      // The refused caller's hand-back is a slow write (a busy pool, a row lock).
      releaseClaim: async (real, claim) => {
        if (first) {
          first = false;
          entered = true;
          await gate;
        }
        return real(claim);
      },
    });
    const bad = await h.peer({
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url },
      },
      store,
    });
    h.clock.advance(11 * HOUR); // all due, tokens still valid
    const caller = bad.getToken(ids[0] ?? "").catch(() => undefined); // refused: the first refusal
    await eventually(
      () => entered,
      (e) => e,
      { what: "the refused caller's hand-back" },
    );
    expect(grants(h)).toBe(1);
    // The refresher's pass (its 5 s sync comes first) runs meanwhile.
    await bad.refreshDue();
    open();
    await caller;
    expect(grants(h)).toBe(1);
  });
});
