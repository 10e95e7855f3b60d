// `serve` dates its stored instants by warden.clock (the database's clock on PostgreSQL), but what is
// checked against clocks outside the deployment stays on the host's: Slack's request timestamps (a
// 5-minute window on Slack's clock), outgoing webhooks' timestamps (each receiver checks them against
// its own) and the HTTP-date of a receiver's Retry-After (a date on the receiver's clock). Otherwise a database whose clock is off (a self-hosted PostgreSQL whose time sync broke)
// would make every instance refuse Slack's events and every receiver refuse the webhooks. From a review
// (branch review9).
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { verifyWebhook } from "../../src/server/webhooks/signature.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import {
  openServerHarness,
  postSlackEvent,
  type ServerHarness,
  WEBHOOK_SECRET,
  WebhookReceiver,
} from "./server-harness.js";

const TEN_MINUTES = 10 * 60_000;

describe("serve on a postgres whose clock runs ten minutes ahead of the hosts' and Slack's (review)", () => {
  let h: ServerHarness | null = null;
  let receiver: WebhookReceiver | null = null;
  beforeEach(() => {
    // What the warden measures against this host's clock (which agrees with Slack's).
    vi.spyOn(PostgresStore.prototype, "clockOffsetMs").mockResolvedValue(TEN_MINUTES);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await h?.close();
    await receiver?.down();
    h = null;
    receiver = null;
  });

  it("accepts a Slack event signed just now (Slack's timestamp is checked against real time)", async () => {
    h = await openServerHarness("postgres");
    const body = JSON.stringify({ type: "url_verification", challenge: "c-123" });
    const res = await postSlackEvent(h, body); // dated by Slack's clock, which is this host's
    expect({ status: res.statusCode, body: res.body }).toEqual({
      status: 200,
      body: JSON.stringify({ challenge: "c-123" }),
    });
  });

  it("signs webhooks with a timestamp a receiver on real time accepts (verifyWebhook, its 5-minute window)", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    h = await openServerHarness("postgres", {
      webhookUrl: receiver.url,
      server: { webhookIntervalMs: 3_600_000 },
    });
    const id = await h.installAndImport("Receiver on real time");
    await h.server.warden.markNeedsReauth(id, "all", "app_uninstalled");
    await h.server.dispatcher?.drain();
    const hook = receiver.received.find((w) => w.body.includes("connection.needs_reauth"));
    expect(hook).toBeDefined();
    const nowMs = h.clock.now(); // the receiver's clock, as this host's
    expect(
      verifyWebhook({
        secret: WEBHOOK_SECRET,
        body: hook?.body ?? "",
        nowMs,
        timestampHeader: hook?.headers["x-tokenwarden-timestamp"] as string | undefined,
        signatureHeader: hook?.headers["x-tokenwarden-signature"] as string | undefined,
      }),
    ).toBe(true);
  });

  it("waits until the HTTP-date a receiver's Retry-After names, by the receiver's clock", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    h = await openServerHarness("postgres", {
      webhookUrl: receiver.url,
      server: { webhookIntervalMs: 3_600_000 },
    });
    const clock = h.clock; // the receiver's clock, as this host's
    receiver.failNext = 1;
    receiver.failHeaders = () => ({ "retry-after": new Date(clock.now() + 5 * 60_000).toUTCString() });
    const id = await h.installAndImport("Retry-After on real time");
    await h.server.warden.markNeedsReauth(id, "all", "app_uninstalled");
    await h.server.dispatcher?.drain();
    const attempts = () =>
      receiver?.received.filter((w) => w.body.includes("connection.needs_reauth")).length;
    expect(attempts()).toBe(1);
    // A minute on, four before the date: not yet (by the database's clock the date was already past).
    clock.advance(60_000);
    await h.server.dispatcher?.drain();
    expect(attempts()).toBe(1);
    clock.advance(5 * 60_000);
    await h.server.dispatcher?.drain();
    expect(attempts()).toBe(2);
  });
});
