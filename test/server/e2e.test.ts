// End to end over real HTTP: install through the real redirects (emulator's authorize step included),
// token route, proxy with a token_expired retry, uninstall → signed event → needs_reauth → webhook →
// reconnect via a connect session → recovered. On both stores.
import { afterEach, describe, expect, it } from "vitest";
import { signSlackRequest } from "../../src/providers/slack/slack-signature.js";
import { verifyWebhook } from "../../src/server/webhooks/signature.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import {
  hop,
  installViaBrowser,
  openServerHarness,
  type ServerHarness,
  WEBHOOK_SECRET,
  WebhookReceiver,
} from "./server-harness.js";

type Json = Record<string, unknown>;

describe.each(STORE_KINDS)("server end to end (%s)", (kind) => {
  let h: ServerHarness;
  let receiver: WebhookReceiver;
  afterEach(async () => {
    await h?.close();
    await receiver?.down();
  });

  it("installs, serves tokens, proxies with a retry, turns an uninstall into a webhook, reconnects", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    h = await openServerHarness(kind, {
      webhookUrl: receiver.url,
      env: { TOKENWARDEN_SLACK_USER_SCOPES: "users:read" },
    });
    const { emu, server } = h;
    const { clientId } = emu.demoApp;
    const teamId = emu.demoTeam.teamId;
    emu.control.setAuthorize({ mode: "approve" });
    emu.control.setEventsUrl(clientId, `${server.url}/slack/events`);

    // Install via the real redirects.
    const done = await installViaBrowser(h, `${server.url}/oauth/slack/install`);
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe(
      `${server.publicUrl}/oauth/slack/installed?connection_id=${teamId}`,
    );
    expect((await hop(done.headers.get("location") ?? "")).status).toBe(200);

    const connection = (await (await h.api(`/v1/connections/${teamId}`)).json()) as Json;
    expect(connection).toMatchObject({ id: teamId, provider: "slack", status: "active" });
    expect((connection["metadata"] as Json)["team_name"]).toBe(emu.demoTeam.name);
    expect((connection["credentials"] as Json[]).map((c) => c["kind"])).toEqual(["bot", "user"]);
    expect(JSON.stringify(connection)).not.toMatch(/xox[a-z]/);

    // The token route.
    const tokenRes = await h.api(`/v1/connections/${teamId}/token?kind=bot&min_ttl=60`);
    expect(tokenRes.status).toBe(200);
    expect(tokenRes.headers.get("cache-control")).toBe("no-store");
    const token = (await tokenRes.json()) as Json;
    expect(String(token["access_token"])).toMatch(/^xoxe\.xoxb-1-/);
    expect(token["expires_in"]).toBe(43_200);

    // Uninstall in the emulator → signed events → needs_reauth at once.
    emu.control.uninstall({ clientId, teamId });
    const deliveries = await emu.control.flushEvents();
    expect(deliveries.map((d) => d.type).sort()).toEqual(["app_uninstalled", "tokens_revoked"]);
    expect(deliveries.every((d) => d.state === "delivered")).toBe(true);
    const dead = await h.api(`/v1/connections/${teamId}/token`);
    expect(dead.status).toBe(409);
    const deadError = ((await dead.json()) as { error: Json }).error;
    // tokens_revoked and app_uninstalled arrive concurrently (§6.3): the first one names the episode.
    expect(["app_uninstalled", "token_revoked"]).toContain(deadError["reason"]);
    // Signed: the install route may then preselect the workspace (a bare id is told nothing).
    expect(server.reconnectUrl(teamId)).toMatch(
      new RegExp(`^${server.publicUrl}/oauth/slack/install\\?connection_id=${teamId}&sig=[\\w-]{43}$`),
    );
    expect(deadError).toMatchObject({
      code: "needs_reauth",
      reconnect_url: server.reconnectUrl(teamId),
    });

    // A replayed event (Slack's retry): same answer, no second event in the log.
    const eventsBefore = ((await (await h.api(`/v1/connections/${teamId}/events?limit=500`)).json()) as Json)[
      "items"
    ];
    const replay = deliveries[0];
    if (replay === undefined) throw new Error("no delivery");
    const ts = Math.floor(h.clock.now() / 1000);
    const again = await fetch(`${server.url}/slack/events`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": signSlackRequest(emu.demoApp.signingSecret, ts, replay.body),
        "x-slack-retry-num": "1",
      },
      body: replay.body,
    });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ ok: true });
    const eventsAfter = ((await (await h.api(`/v1/connections/${teamId}/events?limit=500`)).json()) as Json)[
      "items"
    ];
    expect(eventsAfter).toEqual(eventsBefore);

    // The webhook, signed, with its idempotency id and the reconnect link.
    await server.dispatcher?.drain();
    const needs = receiver.received.filter(
      (w) => w.headers["x-tokenwarden-event"] === "connection.needs_reauth",
    );
    expect(receiver.received.map((w) => w.headers["x-tokenwarden-event"])).toEqual([
      "connection.needs_reauth",
    ]);
    const hook = needs[0];
    if (hook === undefined) throw new Error("no webhook");
    expect(
      verifyWebhook({
        secret: WEBHOOK_SECRET,
        body: hook.body,
        nowMs: h.clock.now(),
        timestampHeader: hook.headers["x-tokenwarden-timestamp"] as string,
        signatureHeader: hook.headers["x-tokenwarden-signature"] as string,
      }),
    ).toBe(true);
    const payload = JSON.parse(hook.body) as Json;
    expect(payload["id"]).toBe(hook.headers["x-tokenwarden-id"]);
    expect(payload).toMatchObject({
      type: "connection.needs_reauth",
      data: {
        connection_id: teamId,
        provider: "slack",
        reconnect_url: server.reconnectUrl(teamId),
      },
    });

    // Reconnect through a connect session → recovered, with a webhook.
    const session = await h.api("/v1/connect-sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ connection_id: teamId }),
    });
    expect(session.status).toBe(201);
    const { url } = (await session.json()) as { url: string };
    const back = await installViaBrowser(h, url);
    expect(back.status).toBe(303);
    const revived = (await (await h.api(`/v1/connections/${teamId}`)).json()) as Json;
    expect(revived["status"]).toBe("active");
    const fresh = await h.api(`/v1/connections/${teamId}/token`);
    expect(fresh.status).toBe(200);
    expect(((await fresh.json()) as Json)["access_token"]).not.toBe(token["access_token"]);
    await server.dispatcher?.drain();
    expect(receiver.received.map((w) => w.headers["x-tokenwarden-event"])).toContain("connection.recovered");
    expect(new Set(receiver.received.map((w) => w.headers["x-tokenwarden-id"])).size).toBe(
      receiver.received.length,
    );

    // Proxy (last: Slack's clock stays ahead of ours from here): Slack alone moves 12 h on, so the first call gets token_expired; one refresh, one retry.
    emu.control.advance(43_200);
    emu.control.resetCounters();
    const proxied = await h.api(`/v1/proxy/${teamId}/chat.postMessage`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ channel: "#general", text: "hello" }),
    });
    expect(proxied.status).toBe(200);
    expect(await proxied.json()).toMatchObject({ ok: true, message: { text: "hello" } });
    expect(emu.control.counters()).toMatchObject({ refreshes: 1, maxPresentations: 1 });
    // The event log speaks the API's snake_case, event data included.
    const log = ((await (await h.api(`/v1/connections/${teamId}/events?limit=50`)).json()) as Json)["items"];
    const refreshed = (log as Array<{ type: string; data: Record<string, unknown> }>).find(
      (e) => e.type === "refreshed",
    );
    expect(refreshed?.data).toMatchObject({ refresh_token_rotated: true });
    expect(typeof refreshed?.data["expires_at_ms"]).toBe("number");
    expect(JSON.stringify(log)).not.toMatch(/"[a-z]+[A-Z]\w*":/);
    const form = await h.api(`/v1/proxy/${teamId}/conversations.list?limit=5`);
    expect(((await form.json()) as Json)["ok"]).toBe(true);
    // 429 and Retry-After pass through.
    emu.control.fault("auth.test", { kind: "ratelimited", times: 1, retryAfterSeconds: 7 });
    const limited = await h.api(`/v1/proxy/${teamId}/auth.test`, { method: "POST" });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");

    // Metrics reflect it.
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('tokenwarden_refreshes_total{provider="slack",outcome="refreshed"} 1');
    expect(metrics).toContain('tokenwarden_connections{status="active"} 1');
    expect(metrics).toMatch(/tokenwarden_webhook_deliveries_total\{outcome="delivered"\} [1-9]/);
    // The cache's running totals are counters, and a scrape adds only what was counted since the last.
    const total = (text: string, result: string) =>
      Number(
        new RegExp(`tokenwarden_token_cache_requests_total\\{result="${result}"\\} (\\d+)`).exec(text)?.[1],
      );
    expect(metrics).toContain("# TYPE tokenwarden_token_cache_requests_total counter");
    const before = server.warden.stats();
    const rescraped = await (await fetch(`${server.url}/metrics`)).text();
    const after = server.warden.stats();
    for (const [result, key] of [
      ["hit", "hits"],
      ["miss", "misses"],
    ] as const) {
      expect(total(rescraped, result)).toBeGreaterThanOrEqual(before[key]);
      expect(total(rescraped, result)).toBeLessThanOrEqual(after[key]);
    }
    expect(total(rescraped, "hit") + total(rescraped, "miss")).toBeGreaterThan(0);
  });
});
