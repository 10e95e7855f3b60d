// The proxy's edges: whose token it sends where, and what a caller sees when Slack gives no answer.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Provider } from "../../src/core/ports.js";
import { createWarden } from "../../src/engine/warden.js";
import { closedPort } from "../helpers/closed-port.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";
import { API_KEY, botFromInstall, openServerHarness, type ServerHarness } from "./server-harness.js";

const AUTH = { authorization: `Bearer ${API_KEY}` };
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe.each(STORE_KINDS)("proxy (%s)", (kind) => {
  let h: ServerHarness;
  const sent: Array<{ url: string; authorization: string | null }> = [];

  beforeAll(async () => {
    h = await openServerHarness(kind, {
      server: {
        fetch: async (input, init) => {
          const headers = new Headers(init?.headers);
          sent.push({ url: String(input), authorization: headers.get("authorization") });
          return fetch(input, init);
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("never sends another provider's token to Slack: 400, and no request leaves", async () => {
    // A library process on the same store runs a provider the server does not.
    const other = {
      id: "github",
      refresh: async () => {
        throw new Error("not called");
      },
      check: async () => ({ kind: "ok" }),
      revoke: async () => ({ kind: "ok" }),
      classifyApiError: () => ({ kind: "transient", reason: "provider_unavailable", error: "x" }),
    } as unknown as Provider;
    const key = h.env["TOKENWARDEN_ENCRYPTION_KEY"] ?? "";
    const lib = await createWarden({
      store: await openSealedStore(kind, h.schema ?? h.database.slice("sqlite:".length), key),
      encryptionKey: key,
      extraProviders: [other],
      logger: silent,
      env: {},
    });
    try {
      await lib.connections.import({
        id: "gh-acme",
        provider: "github",
        credentials: { default: { accessToken: "ghp_not_for_slack", expiresIn: 3_600 } },
      });
    } finally {
      await lib.close();
    }
    sent.length = 0;
    const res = await h.server.app.inject({
      method: "POST",
      url: "/v1/proxy/gh-acme/auth.test",
      headers: AUTH,
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: { code: "invalid_input" } });
    expect(res.body).not.toContain("ghp_");
    expect(sent).toEqual([]);
  });

  it("refuses Slack's OAuth methods: their answers are about their arguments, never the connection's token", async () => {
    // oauth.v2.access authenticates with the app's client credentials and ignores the bearer: its
    // invalid_refresh_token is about the refresh token in the body, and must not kill this connection.
    const teamId = await h.installAndImport("oauth-method");
    const { clientId, clientSecret } = h.emu.demoApp;
    sent.length = 0;
    for (const method of [
      "oauth.v2.access",
      "oauth.access",
      "oauth.v2.exchange",
      "openid.connect.token",
      // These end the connection's tokens behind the store's back: DELETE ?revoke=true does it.
      "auth.revoke",
      "apps.uninstall",
    ]) {
      const res = await h.server.app.inject({
        method: "POST",
        url: `/v1/proxy/${teamId}/${method}`,
        headers: { ...AUTH, "content-type": "application/x-www-form-urlencoded" },
        payload: `grant_type=refresh_token&refresh_token=xoxe-1-not-ours&client_id=${clientId}&client_secret=${clientSecret}`,
      });
      expect(res.statusCode, `${method}: ${res.body}`).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: "invalid_input" } });
    }
    expect(sent).toEqual([]);
    expect((await h.server.warden.connections.get(teamId)).status).toBe("active");
  });

  it("refuses a token argument: the proxy supplies the token, and Slack's verdict must be about ours", async () => {
    // Slack also reads a token from a form body (and, for old apps, the query): a caller's own token
    // there could be the one Slack judges, and its invalid_auth would kill this connection.
    const teamId = await h.installAndImport("token-argument");
    sent.length = 0;
    for (const [url, payload] of [
      [`/v1/proxy/${teamId}/auth.test?token=xoxb-someone-else`, undefined],
      [`/v1/proxy/${teamId}/auth.test?a=1&Token=xoxb-someone-else`, undefined],
      [`/v1/proxy/${teamId}/chat.postMessage`, "channel=C1&token=xoxb-someone-else"],
      [`/v1/proxy/${teamId}/chat.postMessage`, "channel=C1&tok%65n=xoxb-someone-else"],
    ] as const) {
      const res = await h.server.app.inject({
        method: "POST",
        url,
        headers: { ...AUTH, "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
        ...(payload === undefined ? {} : { payload }),
      });
      expect(res.statusCode, `${url} ${payload}: ${res.body}`).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: "invalid_input" } });
      expect(res.body).not.toContain("xoxb-someone-else");
    }
    expect(sent).toEqual([]);
    // A "token" inside a JSON body is not an argument Slack reads: it goes through.
    const json = await h.server.app.inject({
      method: "POST",
      url: `/v1/proxy/${teamId}/chat.postMessage`,
      headers: { ...AUTH, "content-type": "application/json" },
      payload: JSON.stringify({ channel: "#general", text: "token" }),
    });
    expect(json.statusCode, json.body).toBe(200);
  });

  it("refuses a token argument in a text/plain or multipart body too: Slack reads those as arguments", async () => {
    // Slack takes text/plain (read as a form) and multipart/form-data bodies, and a token in either is
    // an argument it may judge instead of ours; the emulator, like Slack, prefers it to the header.
    const teamId = await h.installAndImport("token-argument-other-bodies");
    const boundary = "----twboundary42";
    const multipart = [
      `--${boundary}`,
      'Content-Disposition: form-data; name="channel"',
      "",
      "C1",
      `--${boundary}`,
      'Content-Disposition: form-data; name="token"',
      "",
      "xoxb-someone-else",
      `--${boundary}--`,
      "",
    ].join("\r\n");
    sent.length = 0;
    for (const [contentType, payload] of [
      ["text/plain", "token=xoxb-someone-else"],
      ["text/plain; charset=utf-8", "channel=C1&token=xoxb-someone-else"],
      [`multipart/form-data; boundary=${boundary}`, multipart],
      [`multipart/form-data; boundary="${boundary}"`, multipart],
    ] as const) {
      const res = await h.server.app.inject({
        method: "POST",
        url: `/v1/proxy/${teamId}/auth.test`,
        headers: { ...AUTH, "content-type": contentType },
        payload,
      });
      expect(res.statusCode, `${contentType}: ${res.body}`).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: "invalid_input" } });
    }
    expect(sent).toEqual([]);
    expect((await h.server.warden.connections.get(teamId)).status).toBe("active");
    // A multipart body without a token field goes through (the emulator refuses multipart itself).
    const upload = multipart.replace('name="token"', 'name="title"');
    const res = await h.server.app.inject({
      method: "POST",
      url: `/v1/proxy/${teamId}/auth.test`,
      headers: { ...AUTH, "content-type": `multipart/form-data; boundary=${boundary}` },
      payload: upload,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it("marks every proxied answer no-store: it is one workspace's data, fetched with its token", async () => {
    // Slack's own Cache-Control is not among the headers passed back; without ours, a cache in front of
    // the server (one that keys on the URL alone) could serve a workspace's messages to anyone.
    const teamId = await h.installAndImport("no-store");
    for (const [method, url] of [
      ["GET", `/v1/proxy/${teamId}/conversations.list?limit=5`],
      ["POST", `/v1/proxy/${teamId}/auth.test`],
    ] as const) {
      const res = await h.server.app.inject({ method, url, headers: AUTH });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers["cache-control"], url).toBe("no-store");
    }
  });

  it("passes a large answer back without parsing it on the event loop just to find ok", async () => {
    // conversations.history at limit=999, users.list of a big workspace: megabytes of JSON. Only an
    // ok:false envelope needs reading (to refresh, or to mark a dead token), and that one is small.
    const teamId = await h.installAndImport("large");
    const messages = Array.from({ length: 20_000 }, (_, i) => ({ type: "message", text: `message ${i}` }));
    const big = JSON.stringify({ ok: true, messages, has_more: true });
    const server = await h.start({
      fetch: async () =>
        new Response(big, { status: 200, headers: { "content-type": "application/json; charset=utf-8" } }),
    });
    const parse = vi.spyOn(JSON, "parse");
    try {
      const res = await server.app.inject({
        method: "GET",
        url: `/v1/proxy/${teamId}/conversations.history?limit=999`,
        headers: AUTH,
      });
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe(big);
      expect(parse.mock.calls.filter(([text]) => String(text).length > 64 * 1024)).toEqual([]);
    } finally {
      parse.mockRestore();
    }
  });

  it("a 409 names the reason of the credential the call used, not the connection's first dead one", async () => {
    const team = h.emu.control.createTeam({ name: "two-kinds" });
    const install = h.emu.control.install({
      clientId: h.emu.demoApp.clientId,
      teamId: team.teamId,
      botScopes: ["chat:write"],
      userScopes: ["users:read"],
    });
    const user = install.authed_user as { access_token: string; refresh_token: string };
    await h.server.warden.connections.import({
      id: team.teamId,
      provider: "slack",
      credentials: {
        bot: botFromInstall(install),
        user: { accessToken: user.access_token, refreshToken: user.refresh_token, expiresIn: 43_200 },
      },
    });
    const call = (kind: "bot" | "user") =>
      h.server.app.inject({
        method: "POST",
        url: `/v1/proxy/${team.teamId}/auth.test`,
        headers: { ...AUTH, "x-tokenwarden-kind": kind },
      });
    h.emu.control.fault("auth.test", { kind: "error", error: "account_inactive", times: 1 });
    expect((await call("bot")).json()).toMatchObject({ error: { reason: "account_inactive" } });
    h.emu.control.fault("auth.test", { kind: "error", error: "invalid_auth", times: 1 });
    const res = await call("user");
    expect(res.statusCode, res.body).toBe(409);
    expect(res.json()).toMatchObject({ error: { code: "needs_reauth", reason: "invalid_auth" } });
  });

  it("a dead answer about a token replaced twice during the call is passed on, not a 409 for a live connection", async () => {
    // Each call meets a token another process has just rotated (Slack revoked the old one on its way):
    // withToken retries once with the stored token, and that answer too is about a replaced token.
    const teamId = await h.installAndImport("replaced-twice");
    const server = await h.start({
      fetch: async (input, init) => {
        const used = new Headers(init?.headers).get("authorization")?.slice("Bearer ".length) ?? "";
        await h.server.warden.connections.refresh(teamId);
        h.emu.control.revokeToken(used);
        return fetch(input, init);
      },
    });
    const res = await server.app.inject({
      method: "POST",
      url: `/v1/proxy/${teamId}/auth.test`,
      headers: AUTH,
    });
    expect((await h.server.warden.connections.get(teamId)).status).toBe("active");
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ ok: false, error: "token_revoked" });
  });

  it("a 5xx is Slack's trouble whatever its body says: passed back, and the connection lives on", async () => {
    // A gateway in front of Slack's API may answer a 503 with an ok:false envelope: a 5xx is
    // provider_unavailable whatever its body (slack-errors.ts), never a verdict on the token.
    const teamId = await h.installAndImport("5xx-body");
    const server = await h.start({
      fetch: async () =>
        new Response('{"ok":false,"error":"invalid_auth"}', {
          status: 503,
          headers: { "content-type": "application/json" },
        }),
    });
    const res = await server.app.inject({
      method: "POST",
      url: `/v1/proxy/${teamId}/auth.test`,
      headers: AUTH,
    });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.json()).toEqual({ ok: false, error: "invalid_auth" });
    expect((await h.server.warden.connections.get(teamId)).status).toBe("active");
  });

  it("answers 503 provider_unavailable when Slack's answer is lost", async () => {
    const teamId = await h.installAndImport("lost");
    h.emu.control.fault("auth.test", { kind: "lost_response", times: 1 });
    const res = await h.server.app.inject({
      method: "POST",
      url: `/v1/proxy/${teamId}/auth.test`,
      headers: AUTH,
    });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.json()).toMatchObject({ error: { code: "provider_unavailable" } });
    expect(res.body).not.toMatch(/xox[a-z]/);
  });

  it("answers 503 provider_unavailable when Slack cannot be reached", async () => {
    const teamId = await h.installAndImport("unreachable");
    const server = await h.start({
      env: { ...h.env, SLACK_BASE_URL: `http://127.0.0.1:${await closedPort()}` },
    });
    const res = await server.app.inject({
      method: "POST",
      url: `/v1/proxy/${teamId}/auth.test`,
      headers: AUTH,
    });
    expect(res.statusCode, res.body).toBe(503);
    expect(res.json()).toMatchObject({ error: { code: "provider_unavailable" } });
    expect(res.json().error.message).toContain("ECONNREFUSED");
  });
});
