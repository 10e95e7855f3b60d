// The all-clear of a provider flag: Slack refuses our client secret (provider.misconfigured pages
// someone), the secret is fixed, and the next refresh that goes through lifts the flag. The pager needs
// an event to resolve with: provider.recovered, once, whichever of the servers on the store lifts it,
// delivered signed through the real server. Both stores.
import { afterEach, describe, expect, it } from "vitest";
import { verifyWebhook } from "../../src/server/webhooks/signature.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { openServerHarness, type ServerHarness, WEBHOOK_SECRET, WebhookReceiver } from "./server-harness.js";

interface Delivered {
  id: string;
  type: string;
  data: Record<string, unknown>;
}

describe.each(STORE_KINDS)("provider.recovered webhook (%s)", (kind) => {
  let h: ServerHarness | undefined;
  let receiver: WebhookReceiver | undefined;
  afterEach(async () => {
    await h?.close();
    await receiver?.down();
  });

  it("is delivered once when the refused client secret works again, however many servers lift the flag at once", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    h = await openServerHarness(kind, { webhookUrl: receiver.url, server: { webhookIntervalMs: 3_600_000 } });
    const a = h.server;
    const [one, two] = [await h.installAndImport("Refused A"), await h.installAndImport("Refused B")];
    const flaggedAt = h.clock.now();
    h.emu.control.fault("oauth.v2.access", { kind: "error", error: "bad_client_secret", times: 1 });
    await a.warden.connections.refresh(one).catch(() => {});
    expect((await a.warden.providerState("slack")).status).toBe("misconfigured");
    // A second server on the same store: it reads the flag at startup and holds back too.
    const b = await h.start({ webhookIntervalMs: 3_600_000 });
    expect((await b.warden.providerState("slack")).appliesHere).toBe(true);

    // The secret is fixed at Slack (the fault is spent). Past the probe spacing, both probe at once.
    h.clock.advance(11_000);
    const liftedAt = h.clock.now();
    const rows = await Promise.all([a.warden.connections.refresh(one), b.warden.connections.refresh(two)]);
    expect(rows.flat().map((r) => r.refreshed)).toEqual([true, true]);
    expect((await a.warden.providerState("slack")).status).toBe("ok");

    await Promise.all([a.dispatcher?.drain(), b.dispatcher?.drain()]);
    const delivered = receiver.received.map((w) => JSON.parse(w.body) as Delivered);
    expect(delivered.map((d) => d.type).sort()).toEqual(["provider.misconfigured", "provider.recovered"]);
    const recovered = delivered.find((d) => d.type === "provider.recovered");
    expect(recovered?.data).toEqual({
      provider: "slack",
      since: new Date(flaggedAt).toISOString(),
      at: new Date(liftedAt).toISOString(),
    });
    for (const w of receiver.received) {
      expect(w.headers["x-tokenwarden-event"]).toBe(JSON.parse(w.body).type);
      expect(
        verifyWebhook({
          secret: WEBHOOK_SECRET,
          body: w.body,
          nowMs: h.clock.now(),
          timestampHeader: w.headers["x-tokenwarden-timestamp"] as string,
          signatureHeader: w.headers["x-tokenwarden-signature"] as string,
        }),
      ).toBe(true);
    }
    // Nothing further: later successes lift nothing.
    h.clock.advance(60_000);
    await a.warden.connections.refresh(one);
    await a.dispatcher?.drain();
    expect(receiver.received).toHaveLength(2);
  });
});
