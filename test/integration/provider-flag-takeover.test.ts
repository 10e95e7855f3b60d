// A process refused once (a new secret deployed before it was regenerated at Slack) whose credentials
// Slack now accepts does not take the flag over from the processes refused now (the old secret), so
// its own probe's success cannot lift a flag that is theirs: the shared state keeps reading
// `misconfigured` while they are refused, and their next probe pages nobody again.
import { afterEach, describe, expect, it } from "vitest";
import type { Warden } from "../../src/engine/warden.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { misconfiguredWebhooks, outboxStore } from "../helpers/provider-flag-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("flag takeover on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a refused process whose secret Slack now accepts does not take the flag of the processes still refused (one page per rollout, status stays misconfigured)", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 3; i++) await h.installAndImport();
    const real = h.emu.demoApp.clientSecret;
    // Slack's side: before the regenerate it accepts the secret the old processes send; after it, the
    // one the new processes send. (The emulator keeps one secret: each process's fetch maps its own.)
    let regenerated = false;
    const sending =
      (accepted: () => boolean): typeof globalThis.fetch =>
      (input, init) => {
        const body = typeof init?.body === "string" ? init.body : undefined;
        const swapped =
          body === undefined
            ? init
            : {
                ...init,
                body: body.replace(
                  /client_secret=[^&]*/,
                  `client_secret=${accepted() ? real : "refused-at-slack"}`,
                ),
              };
        return globalThis.fetch(input, swapped);
      };
    const harness = h;
    const on = async (clientSecret: string, accepted: () => boolean): Promise<Warden> =>
      harness.peer({
        providers: {
          slack: { clientId: harness.emu.demoApp.clientId, clientSecret, baseUrl: harness.emu.url },
        },
        fetch: sending(accepted),
        store: await outboxStore(harness),
      });
    const oldProc = await on("the-old-secret", () => !regenerated);
    const newProc = await on("the-new-secret", () => regenerated);
    h.clock.advance(11 * HOUR); // all due

    // The new secret is deployed before it was regenerated at Slack: the new process is refused.
    await newProc.refreshDue();
    expect(await misconfiguredWebhooks(h)).toBe(1);
    // The secret is regenerated at Slack: now the old process is refused (the flag names its secret).
    regenerated = true;
    await oldProc.refreshDue();
    const oldFlag = await h.store.getProviderState("slack");
    expect(oldFlag?.status).toBe("misconfigured");

    // A minute on, the new process's refresher syncs and probes: its credentials work now.
    h.clock.advance(61_000);
    await newProc.refreshDue();
    const after = await h.store.getProviderState("slack");
    // The old process is still refused (and holds back): its flag must stay.
    expect({ status: after?.status, names: after?.clientFingerprint }).toEqual({
      status: "misconfigured",
      names: oldFlag?.clientFingerprint,
    });
    // ... and its next probe does not page a second time for the same rollout.
    await oldProc.refreshDue();
    expect(await misconfiguredWebhooks(h)).toBe(0);
  });
});
