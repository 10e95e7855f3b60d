// The webhook outbox: receiver down, server restarted, receiver up → every webhook delivered; repeats
// (a 5xx after receipt, a process that died mid-delivery) carry the same idempotency id. Both stores.
import { afterEach, describe, expect, it } from "vitest";
import { parseKeyRing } from "../../src/crypto/key-ring.js";
import { AesGcmSealer } from "../../src/crypto/seal.js";
import { verifyWebhook } from "../../src/server/webhooks/signature.js";
import { openStore } from "../../src/store/open-store.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { openServerHarness, type ServerHarness, WEBHOOK_SECRET, WebhookReceiver } from "./server-harness.js";

describe.each(STORE_KINDS)("webhook outbox (%s)", (kind) => {
  let h: ServerHarness;
  let receiver: WebhookReceiver;
  afterEach(async () => {
    await h?.close();
    await receiver?.down();
  });

  // RFC 9110 §10.2.3 allows an HTTP-date as well as seconds; README: "a `Retry-After` is honoured".
  it("holds a webhook back until the HTTP-date a receiver's Retry-After names", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    h = await openServerHarness(kind, { webhookUrl: receiver.url, server: { webhookIntervalMs: 3_600_000 } });
    const clock = h.clock;
    receiver.failNext = 1;
    receiver.failHeaders = () => ({ "retry-after": new Date(clock.now() + 2 * 3_600_000).toUTCString() });
    const id = await h.installAndImport("Retry-After date");
    await h.server.warden.markNeedsReauth(id, "all", "app_uninstalled");
    await h.server.dispatcher?.drain();
    const attempts = () => receiver.received.filter((w) => w.body.includes("connection.needs_reauth")).length;
    expect(attempts()).toBe(1);
    // Ten minutes on, well before the date: nothing is due (the backoff alone would have retried).
    clock.advance(10 * 60_000);
    await h.server.dispatcher?.drain();
    expect(attempts()).toBe(1);
    // Past the date it is delivered.
    clock.advance(2 * 3_600_000);
    await h.server.dispatcher?.drain();
    expect(attempts()).toBe(2);
  });

  it("holds a Retry-After beyond the longest backoff to an hour, so the webhook is still tried", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    h = await openServerHarness(kind, { webhookUrl: receiver.url, server: { webhookIntervalMs: 3_600_000 } });
    const clock = h.clock;
    receiver.failNext = 1;
    receiver.failHeaders = () => ({ "retry-after": String(365 * 24 * 3_600) });
    const id = await h.installAndImport("Retry-After next year");
    await h.server.warden.markNeedsReauth(id, "all", "app_uninstalled");
    await h.server.dispatcher?.drain();
    const attempts = () => receiver.received.filter((w) => w.body.includes("connection.needs_reauth")).length;
    expect(attempts()).toBe(1);
    clock.advance(3_600_000 + 1_000);
    await h.server.dispatcher?.drain();
    expect(attempts()).toBe(2);
  });

  it("delivers every webhook after a restart once the receiver is back; repeats keep their id", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    await receiver.down(); // the port is known, nobody listens
    h = await openServerHarness(kind, { webhookUrl: receiver.url, server: { webhookIntervalMs: 60_000 } });
    const first = h.server;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const id = await h.installAndImport(`Outbox ${i}`);
      await first.warden.markNeedsReauth(id, "all", "app_uninstalled");
      ids.push(id);
    }
    // Receiver down: every attempt fails and is rescheduled, none is lost.
    await first.dispatcher?.drain();
    expect(receiver.received).toHaveLength(0);
    await first.close();

    // Backoff after the failed attempts: an hour later everything is due again.
    h.clock.advance(3_600_000);
    await receiver.up();
    const second = await h.start({ webhookIntervalMs: 60_000 });
    await second.dispatcher?.drain();
    const types = receiver.received.map(
      (w) => JSON.parse(w.body) as { id: string; type: string; data: { connection_id: string } },
    );
    const needs = types.filter((t) => t.type === "connection.needs_reauth");
    expect(needs.map((t) => t.data.connection_id).sort()).toEqual([...ids].sort());
    // Bot-only installs: the webhook names the credential that died.
    expect(needs.map((t) => (t.data as { kind?: unknown }).kind)).toEqual(ids.map(() => "bot"));
    // Nothing twice: one delivery per id, and each body names its own header id.
    expect(new Set(receiver.received.map((w) => w.headers["x-tokenwarden-id"])).size).toBe(
      receiver.received.length,
    );
    for (const w of receiver.received) {
      expect(JSON.parse(w.body).id).toBe(w.headers["x-tokenwarden-id"]);
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
    // This process's metrics count what it delivered (its own start-up pass may have sent some before
    // the drain: checking "none yet" right after start raced that pass).
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).toContain(
      `tokenwarden_webhook_deliveries_total{outcome="delivered"} ${receiver.received.length}`,
    );
    // Delivered means done: later passes send nothing more.
    const count = receiver.received.length;
    h.clock.advance(24 * 3_600_000);
    await second.dispatcher?.drain();
    expect(receiver.received).toHaveLength(count);
  });

  it("re-sends with the same id when the receiver fails after receipt or a sender dies mid-delivery", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    h = await openServerHarness(kind, { webhookUrl: receiver.url, server: { webhookIntervalMs: 60_000 } });
    // Passes run only when the test drains: a background pass that delivered goes straight into
    // another, which could lease the message the "dead" sender below is meant to lease first.
    await h.server.dispatcher?.stop();
    const w = h.server.warden;
    const teamId = await h.installAndImport("Repeat");

    // The receiver records the delivery, then answers 500: it comes again, with the same id.
    receiver.failNext = 1;
    await w.markNeedsReauth(teamId, "all", "token_revoked");
    await h.server.dispatcher?.drain();
    expect(receiver.received).toHaveLength(1);
    h.clock.advance(60_000);
    await h.server.dispatcher?.drain();
    expect(receiver.received).toHaveLength(2);
    const [a, b] = receiver.received;
    expect(a?.headers["x-tokenwarden-id"]).toBe(b?.headers["x-tokenwarden-id"]);
    expect(a?.body).toBe(b?.body);

    // Another sender leases the next message and dies: nothing goes out until its lease lapses, then once.
    await w.connections.import({
      id: teamId,
      provider: "slack",
      credentials: { bot: { accessToken: "xoxb-reconnected", expiresIn: 43_200 } },
    });
    const key = h.env["TOKENWARDEN_ENCRYPTION_KEY"] ?? "";
    const dead = await openStore(h.database, new AesGcmSealer(parseKeyRing(key)), {
      ...(h.schema === undefined ? {} : { schema: h.schema }),
    });
    const leased = await dead.claimOutbox({
      owner: "dead-process",
      nowMs: h.clock.now(),
      leaseMs: 30_000,
      limit: 10,
    });
    await dead.close();
    expect(leased.map((m) => m.type)).toEqual(["connection.recovered"]);
    await h.server.dispatcher?.drain();
    expect(receiver.received).toHaveLength(2);
    h.clock.advance(30_000);
    await h.server.dispatcher?.drain();
    expect(receiver.received).toHaveLength(3);
    expect(receiver.received[2]?.headers["x-tokenwarden-id"]).toBe(leased[0]?.id);
  });
});
