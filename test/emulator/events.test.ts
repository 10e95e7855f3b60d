// Events API deliveries (slack-api.md §6): signatures that Bolt accepts, retries, url_verification.
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { verifySlackRequest } from "@slack/bolt";
import { afterEach, describe, expect, it } from "vitest";
import { signSlackRequest } from "../../src/emulator/index.js";
import { emulator, str } from "./emulator-harness.js";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** An app endpoint that records requests and answers with `answer(n)` (n = 0-based request index). */
async function appEndpoint(answer: (n: number, body: string, res: ServerResponse) => void) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      received.push({ headers: req.headers, body });
      answer(received.length - 1, body, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push({ close: () => server.close() });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`, received };
}

describe("signing (§6.4)", () => {
  it("matches Slack's documented test vector", () => {
    const body =
      "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    expect(signSlackRequest("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body)).toBe(
      "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    );
  });
});

describe("uninstall events", () => {
  it("sends tokens_revoked and app_uninstalled, signed so that Bolt's verifySlackRequest accepts them", async () => {
    const endpoint = await appEndpoint((_n, _b, res) => res.writeHead(200).end());
    const emu = await emulator({ now: () => 1_800_000_000_500 }); // frozen: timestamps compare exactly
    const app = emu.control.createApp({ eventsUrl: endpoint.url });
    const install = emu.control.install({
      clientId: app.clientId,
      botScopes: ["chat:write"],
      userScopes: ["search:read"],
    });
    emu.control.advance(3600); // the signature timestamp follows the emulator clock
    emu.control.uninstall({ clientId: app.clientId, teamId: emu.demoTeam.teamId });
    const deliveries = await emu.control.flushEvents();
    expect(deliveries.map((d) => [d.type, d.state])).toEqual([
      ["tokens_revoked", "delivered"],
      ["app_uninstalled", "delivered"],
    ]);
    expect(endpoint.received).toHaveLength(2);
    for (const r of endpoint.received) {
      const timestamp = Number(r.headers["x-slack-request-timestamp"]);
      expect(timestamp).toBe(Math.floor(emu.control.now() / 1000));
      expect(() =>
        verifySlackRequest({
          signingSecret: app.signingSecret,
          body: r.body,
          headers: {
            "x-slack-signature": String(r.headers["x-slack-signature"]),
            "x-slack-request-timestamp": timestamp,
          },
          nowMilliseconds: emu.control.now(),
        }),
      ).not.toThrow();
      expect(() =>
        verifySlackRequest({
          signingSecret: "wrong",
          body: r.body,
          headers: {
            "x-slack-signature": String(r.headers["x-slack-signature"]),
            "x-slack-request-timestamp": timestamp,
          },
          nowMilliseconds: emu.control.now(),
        }),
      ).toThrow();
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["x-slack-retry-num"]).toBeUndefined();
    }
    const revoked = JSON.parse(endpoint.received[0]?.body ?? "{}");
    expect(revoked).toMatchObject({
      type: "event_callback",
      team_id: emu.demoTeam.teamId,
      api_app_id: app.appId,
      event: {
        type: "tokens_revoked",
        tokens: { oauth: [emu.demoTeam.userId], bot: [install["bot_user_id"]] },
      },
      authorizations: [{ team_id: emu.demoTeam.teamId, is_bot: false, is_enterprise_install: false }],
    });
    expect(revoked.event_id).toMatch(/^Ev/);
    expect(revoked.event_time).toBe(Math.floor(emu.control.now() / 1000));
    expect(JSON.parse(endpoint.received[1]?.body ?? "{}").event).toMatchObject({ type: "app_uninstalled" });
  });

  it("names in tokens_revoked a rotating credential whose access token had expired but whose refresh token still worked", async () => {
    const emu = await emulator();
    const app = emu.control.createApp({});
    const install = emu.control.install({
      clientId: app.clientId,
      botScopes: ["chat:write"],
      userScopes: ["search:read"],
    });
    emu.control.advance(43_200); // both access tokens expired; both refresh tokens still refresh (§3.5)
    emu.control.uninstall({ clientId: app.clientId, teamId: emu.demoTeam.teamId });
    const [revoked] = await emu.control.flushEvents();
    expect(JSON.parse(revoked?.body ?? "{}").event).toMatchObject({
      type: "tokens_revoked",
      tokens: { oauth: [emu.demoTeam.userId], bot: [install["bot_user_id"]] },
    });
  });

  it("retries failures with X-Slack-Retry-Num/Reason and the same event_id; reinstall then uninstall sends again", async () => {
    const endpoint = await appEndpoint((n, _b, res) => res.writeHead(n < 2 ? 503 : 200).end());
    const emu = await emulator({ eventRetryDelaysMs: [0, 5, 5] });
    const app = emu.control.createApp({ eventsUrl: endpoint.url });
    emu.control.install({ clientId: app.clientId, botScopes: ["chat:write"] });
    emu.control.uninstall({ clientId: app.clientId, teamId: emu.demoTeam.teamId });
    const [first, second] = await emu.control.flushEvents();
    // Both events were attempted concurrently; together they saw two 503s.
    const attempts = [...(first?.attempts ?? []), ...(second?.attempts ?? [])];
    expect(attempts.filter((a) => a.status === 503)).toHaveLength(2);
    expect([first?.state, second?.state]).toEqual(["delivered", "delivered"]);
    const retried = endpoint.received.filter((r) => r.headers["x-slack-retry-num"] !== undefined);
    expect(retried.length).toBe(2);
    for (const r of retried) expect(r.headers["x-slack-retry-reason"]).toBe("http_error");
    const ids = endpoint.received.map((r) => JSON.parse(r.body).event_id as string);
    expect(new Set(ids).size).toBe(2); // 4 requests, 2 distinct events
    emu.control.reinstall({ clientId: app.clientId, botScopes: ["chat:write"] });
    emu.control.uninstall({ clientId: app.clientId, teamId: emu.demoTeam.teamId });
    expect((await emu.control.flushEvents()).map((d) => d.type)).toEqual([
      "tokens_revoked",
      "app_uninstalled",
      "tokens_revoked",
      "app_uninstalled",
    ]);
  });

  it("gives up after the configured retries, and honours x-slack-no-retry", async () => {
    const failing = await appEndpoint((_n, _b, res) => res.writeHead(500).end());
    const emu = await emulator({ eventRetryDelaysMs: [0, 0] });
    const app = emu.control.createApp({ eventsUrl: failing.url });
    emu.control.install({ clientId: app.clientId });
    emu.control.uninstall({ clientId: app.clientId, teamId: emu.demoTeam.teamId });
    const deliveries = await emu.control.flushEvents();
    expect(deliveries.map((d) => [d.state, d.attempts.map((a) => a.retryNum)])).toEqual([
      ["failed", [0, 1, 2]],
      ["failed", [0, 1, 2]],
    ]);
    const stop = await appEndpoint((_n, _b, res) => res.writeHead(500, { "x-slack-no-retry": "1" }).end());
    emu.control.setEventsUrl(app.clientId, stop.url);
    emu.control.reinstall({ clientId: app.clientId });
    emu.control.uninstall({ clientId: app.clientId, teamId: emu.demoTeam.teamId });
    const later = (await emu.control.flushEvents()).slice(2);
    expect(later.map((d) => d.attempts.length)).toEqual([1, 1]);
  });

  it("reports connection failures as connection_failed retries", async () => {
    const emu = await emulator({ eventsUrl: "http://127.0.0.1:9/closed", eventRetryDelaysMs: [0] });
    emu.control.install({ clientId: emu.demoApp.clientId });
    emu.control.uninstall({ clientId: emu.demoApp.clientId, teamId: emu.demoTeam.teamId });
    const [d] = await emu.control.flushEvents();
    expect(d?.attempts.map((a) => [a.retryNum, a.retryReason, a.status])).toEqual([
      [0, null, null],
      [1, "connection_failed", null],
    ]);
  });
});

describe("url_verification (§6.5)", () => {
  it("reports whether the challenge came back", async () => {
    const echo = await appEndpoint((_n, body, res) => {
      res.writeHead(200, { "content-type": "text/plain" }).end(JSON.parse(body).challenge);
    });
    const emu = await emulator();
    const app = emu.control.createApp({ eventsUrl: echo.url });
    const ok = await emu.control.verifyEventsUrl(app.clientId);
    expect(ok).toMatchObject({ ok: true, status: 200 });
    expect(JSON.parse(echo.received[0]?.body ?? "{}")).toMatchObject({
      type: "url_verification",
      challenge: ok.challenge,
    });
    expect(str(echo.received[0]?.headers as Record<string, unknown>, "x-slack-signature")).toMatch(
      /^v0=[0-9a-f]{64}$/,
    );
    const json = await appEndpoint((_n, body, res) =>
      res.writeHead(200).end(JSON.stringify({ challenge: JSON.parse(body).challenge })),
    );
    expect((await emu.control.verifyEventsUrl(app.clientId, json.url)).ok).toBe(true);
    const wrong = await appEndpoint((_n, _b, res) => res.writeHead(200).end("nope"));
    expect((await emu.control.verifyEventsUrl(app.clientId, wrong.url)).ok).toBe(false);
  });

  it("checks the emulator's default events URL (--events-url) for an app without one, as deliveries use it", async () => {
    const echo = await appEndpoint((_n, body, res) => {
      res.writeHead(200, { "content-type": "text/plain" }).end(JSON.parse(body).challenge);
    });
    const emu = await emulator({ eventsUrl: echo.url });
    // Over the control API, as `tokenwarden emulator slack --events-url …` is driven.
    const res = await fetch(`${emu.url}/_emulator/verifyEventsUrl`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ clientId: emu.demoApp.clientId }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, status: 200 });
    expect(echo.received).toHaveLength(1);
    // An app's own URL still comes first.
    const own = await appEndpoint((_n, _b, r) => r.writeHead(200).end("nope"));
    emu.control.setEventsUrl(emu.demoApp.clientId, own.url);
    expect((await emu.control.verifyEventsUrl(emu.demoApp.clientId)).ok).toBe(false);
    expect(own.received).toHaveLength(1);
    expect(echo.received).toHaveLength(1);
  });

  it("refuses with a clear error when no events URL is known at all", async () => {
    const emu = await emulator();
    const res = await fetch(`${emu.url}/_emulator/verifyEventsUrl`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ clientId: emu.demoApp.clientId }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      ok: false,
      error: "no events URL: pass one, set it on the app, or start the emulator with one",
    });
  });
});
