// Slack events that must not be lost: a store that fails while looking the team up, and Slack's
// http_timeout retry arriving while the first delivery is still being acted on (slack-api.md §6.6).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import { signSlackRequest } from "../../src/providers/slack/slack-signature.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { openServerHarness, type ServerHarness } from "./server-harness.js";

describe.each(STORE_KINDS)("slack events (%s)", (kind) => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness(kind);
  });
  afterAll(async () => {
    await h?.close();
  });

  let n = 0;
  const uninstalled = (teamId: string) =>
    JSON.stringify({
      type: "event_callback",
      team_id: teamId,
      event_id: `Ev${kind}${++n}`,
      event: { type: "app_uninstalled" },
    });
  const deliver = (body: string, retry?: number) => {
    const ts = Math.floor(h.clock.now() / 1000);
    return h.server.app.inject({
      method: "POST",
      url: "/slack/events",
      headers: {
        "content-type": "application/json",
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": signSlackRequest(h.emu.demoApp.signingSecret, ts, body),
        ...(retry === undefined ? {} : { "x-slack-retry-num": String(retry) }),
      },
      payload: body,
    });
  };
  const status = async (id: string) => (await h.server.warden.connections.get(id)).status;

  it("a store failure while finding the team is a 5xx, and Slack's retry acts on the event", async () => {
    const teamId = await h.installAndImport("store-fails");
    const connections = h.server.warden.connections;
    const get = connections.get;
    connections.get = async () => {
      connections.get = get;
      throw new TokenwardenError("store_unavailable", "the store is down");
    };
    const body = uninstalled(teamId);
    const first = await deliver(body);
    expect(first.statusCode).toBe(503);
    expect(await status(teamId)).toBe("active");
    const retry = await deliver(body, 1);
    expect(retry.statusCode).toBe(200);
    expect(await status(teamId)).toBe("needs_reauth");
  });

  it("a retry while the first delivery is still acting is refused, so a failing first delivery loses nothing", async () => {
    const teamId = await h.installAndImport("slow-first");
    const warden = h.server.warden;
    const mark = warden.markNeedsReauth;
    let fail!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    warden.markNeedsReauth = () =>
      new Promise((_, reject) => {
        entered();
        fail = () => reject(new TokenwardenError("store_unavailable", "the store is down"));
      });
    const body = uninstalled(teamId);
    const first = deliver(body);
    await inside;
    const early = await deliver(body, 1); // Slack's http_timeout retry, 3 s in
    expect(early.statusCode).toBe(409);
    warden.markNeedsReauth = mark;
    fail();
    expect((await first).statusCode).toBe(503);
    expect(await status(teamId)).toBe("active");
    const later = await deliver(body, 2); // a minute on
    expect(later.statusCode).toBe(200);
    expect(await status(teamId)).toBe("needs_reauth");
    const events = await warden.connections.events(teamId);
    expect(events.filter((e) => e.type === "needs_reauth")).toHaveLength(1);
    // Acted on now: a further retry is acknowledged and changes nothing.
    expect((await deliver(body, 3)).statusCode).toBe(200);
    expect(await warden.connections.events(teamId)).toEqual(events);
  });
});
