// Invariant 7 over HTTP: bad input of every kind gets a 4xx with { error: { code, message } } (or a
// clear HTML page in the browser flow), never a 5xx, and leaves the store exactly as it was.
import fc from "fast-check";
import type { InjectOptions, LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signSlackRequest } from "../../src/providers/slack/slack-signature.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { API_KEY, hop, openServerHarness, type ServerHarness } from "./server-harness.js";

const AUTH = { authorization: `Bearer ${API_KEY}` };

describe.each(STORE_KINDS)("bad input (%s)", (kind) => {
  let h: ServerHarness;
  let teamId: string;

  /** Everything a request could have changed, read through the engine. */
  async function snapshot(): Promise<string> {
    const w = h.server.warden;
    const { items } = await w.connections.list({ limit: 500 });
    const events = await Promise.all(items.map((c) => w.connections.events(c.id, { limit: 500 })));
    return JSON.stringify({ items, events });
  }

  const inject = (o: InjectOptions): Promise<LightMyRequestResponse> => h.server.app.inject(o);

  beforeAll(async () => {
    h = await openServerHarness(kind);
    const { clientId } = h.emu.demoApp;
    teamId = h.emu.demoTeam.teamId;
    const install = h.emu.control.install({ clientId, teamId, botScopes: ["chat:write"] });
    await h.server.warden.connections.import({
      id: teamId,
      provider: "slack",
      credentials: {
        bot: {
          accessToken: install.access_token ?? "",
          refreshToken: install.refresh_token ?? null,
          expiresIn: install.expires_in ?? 43_200,
          providerData: { bot_user_id: install.bot_user_id ?? null },
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  async function expectRefused(
    request: InjectOptions,
    status: number,
    code?: string,
  ): Promise<Record<string, unknown>> {
    const res = await inject(request);
    expect(res.statusCode, `${JSON.stringify(request)} → ${res.body}`).toBe(status);
    const body = res.json() as { error: { code: string; message: string } };
    expect(typeof body.error.message).toBe("string");
    if (code !== undefined) expect(body.error.code).toBe(code);
    expect(res.body).not.toMatch(/xox[a-z]/);
    return body;
  }

  it("refuses bad API requests with a clear 4xx and changes nothing", async () => {
    const before = await snapshot();
    const json = { ...AUTH, "content-type": "application/json" };
    await expectRefused({ method: "GET", url: "/v1/connections" }, 401, "unauthorized");
    await expectRefused(
      { method: "GET", url: "/v1/connections", headers: { authorization: "Bearer nope" } },
      401,
    );
    await expectRefused(
      { method: "GET", url: `/v1/connections/${teamId}/token`, headers: { authorization: API_KEY } },
      401,
    );
    await expectRefused({ method: "POST", url: `/v1/proxy/${teamId}/auth.test` }, 401);
    await expectRefused(
      { method: "POST", url: "/v1/connections", headers: json, payload: "{bad" },
      400,
      "invalid_input",
    );
    await expectRefused(
      { method: "POST", url: "/v1/connections", headers: json, payload: "" },
      400,
      "invalid_input",
    );
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connections",
        headers: json,
        payload: JSON.stringify({ provider: 5, credentials: {} }),
      },
      400,
      "invalid_input",
    );
    /** An import of T-new whose bot credential holds a token and `fields`. */
    const importBot = (fields: Record<string, unknown>): InjectOptions => ({
      method: "POST",
      url: "/v1/connections",
      headers: json,
      payload: JSON.stringify({
        id: "T-new",
        provider: "slack",
        credentials: { bot: { access_token: "xoxb-secret-value", ...fields } },
      }),
    });
    const leaked = await expectRefused(importBot({ expires_in: "soon" }), 400, "invalid_input");
    expect(JSON.stringify(leaked)).not.toContain("secret-value");
    // expires_at in the wrong unit: the message says which one it must be.
    for (const [expiresAt, says] of [
      [Date.now() + 3_600_000, "must be epoch SECONDS, not milliseconds"],
      [43_200, "a lifetime belongs in expires_in"],
    ] as const) {
      const refused = await expectRefused(importBot({ expires_at: expiresAt }), 400, "invalid_input");
      expect(JSON.stringify(refused)).toContain(says);
    }
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connections",
        headers: json,
        payload: JSON.stringify({ provider: "slack", credentials: { bot: { access_token: "x" } }, extra: 1 }),
      },
      400,
    );
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connections",
        headers: json,
        payload: JSON.stringify({ provider: "nope", credentials: { bot: { access_token: "x" } } }),
      },
      400,
      "invalid_input",
    );
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connections",
        headers: json,
        payload: `{"provider":"slack","pad":"${"x".repeat(300_000)}"}`,
      },
      413,
      "payload_too_large",
    );
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connections",
        headers: { ...AUTH, "content-type": "text/plain" },
        payload: "hi",
      },
      415,
    );
    await expectRefused({ method: "GET", url: "/v1/connections/T-unknown", headers: AUTH }, 404, "not_found");
    await expectRefused(
      { method: "GET", url: "/v1/connections/T-unknown/token", headers: AUTH },
      404,
      "not_found",
    );
    await expectRefused({ method: "DELETE", url: "/v1/connections/T-unknown", headers: AUTH }, 404);
    await expectRefused(
      { method: "GET", url: "/v1/connections/bad%20id%00", headers: AUTH },
      400,
      "invalid_input",
    );
    await expectRefused({ method: "GET", url: `/v1/connections/${"x".repeat(200)}`, headers: AUTH }, 400);
    await expectRefused(
      { method: "GET", url: `/v1/connections/${teamId}/token?kind=admin`, headers: AUTH },
      400,
    );
    await expectRefused(
      { method: "GET", url: `/v1/connections/${teamId}/token?min_ttl=-1`, headers: AUTH },
      400,
    );
    // Whole decimal numbers only: Number() would read "" as 0, "0x3c" as 60 and "1e3" as 1000.
    for (const query of [
      "min_ttl=abc",
      "min_ttl=",
      "min_ttl=0x3c",
      "min_ttl=1e3",
      "min_ttl=%2060",
      "min_ttl=6.0",
    ]) {
      await expectRefused(
        { method: "GET", url: `/v1/connections/${teamId}/token?${query}`, headers: AUTH },
        400,
      );
    }
    for (const query of ["limit=", "limit=0x10", "before=1e3", "before="]) {
      await expectRefused(
        { method: "GET", url: `/v1/connections/${teamId}/events?${query}`, headers: AUTH },
        400,
      );
    }
    await expectRefused({ method: "GET", url: "/v1/connections?limit=1e2", headers: AUTH }, 400);
    await expectRefused({ method: "GET", url: "/v1/connections?limit=0", headers: AUTH }, 400);
    await expectRefused({ method: "GET", url: "/v1/connections?cursor=%25%25", headers: AUTH }, 400);
    await expectRefused({ method: "GET", url: "/v1/connections?status=dead", headers: AUTH }, 400);
    // NUL, which PostgreSQL cannot store or compare, is bad input on both stores (not a 503).
    await expectRefused({ method: "GET", url: "/v1/connections?provider=%00", headers: AUTH }, 400);
    await expectRefused({ method: "GET", url: "/v1/connections?cursor=AAAA", headers: AUTH }, 400);
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connections",
        headers: { ...AUTH, "content-type": "application/json" },
        payload: JSON.stringify({
          id: "T-nul",
          provider: "slack",
          credentials: { bot: { access_token: "xoxb-nul", expires_in: 600 } },
          metadata: { name: "a\u0000b" },
        }),
      },
      400,
      "invalid_input",
    );
    await expectRefused(
      { method: "DELETE", url: `/v1/connections/${teamId}?revoke=maybe`, headers: AUTH },
      400,
    );
    await expectRefused({ method: "POST", url: `/v1/proxy/${teamId}/..%2Fsecret`, headers: AUTH }, 400);
    await expectRefused({ method: "POST", url: "/v1/proxy/T-unknown/auth.test", headers: AUTH }, 404);
    await expectRefused({ method: "GET", url: "/v1/nothing-here", headers: AUTH }, 404, "not_found");
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connect-sessions",
        headers: json,
        payload: JSON.stringify({ return_url: "https://evil.example/x" }),
      },
      400,
      "invalid_input",
    );
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connect-sessions",
        headers: json,
        payload: JSON.stringify({ connection_id: "T-unknown" }),
      },
      404,
    );
    await expectRefused(
      {
        method: "POST",
        url: "/v1/connect-sessions",
        headers: json,
        payload: JSON.stringify({ ttl_seconds: 1 }),
      },
      400,
    );
    expect(await snapshot()).toBe(before);
  });

  // The key is checked before the body is read: a caller without it learns nothing about its body
  // (400 / 413 / 415) and makes the server parse none.
  it("answers 401 to a request without the right key, whatever its body", async () => {
    const before = await snapshot();
    const wrongKey = { authorization: "Bearer wrong-key-0123456789" };
    const bodies: InjectOptions[] = [
      { url: "/v1/connections", headers: { "content-type": "application/json" }, payload: "{bad" },
      { url: "/v1/connections", headers: { "content-type": "text/plain" }, payload: "hi" },
      {
        url: "/v1/connect-sessions",
        headers: { ...wrongKey, "content-type": "application/json" },
        payload: `{"pad":"${"x".repeat(300_000)}"}`,
      },
      {
        url: `/v1/proxy/${teamId}/chat.postMessage`,
        headers: { "content-type": "application/json" },
        payload: "x".repeat(2 * 1024 * 1024),
      },
    ];
    for (const request of bodies) await expectRefused({ method: "POST", ...request }, 401, "unauthorized");
    // A GET (its key checked in the handler, off the hook path) with a body it never reads.
    await expectRefused(
      {
        method: "GET",
        url: `/v1/connections/${teamId}/token`,
        headers: { "content-type": "text/plain" },
        payload: "x".repeat(2 * 1024 * 1024),
      },
      401,
      "unauthorized",
    );
    expect(await snapshot()).toBe(before);
  });

  it("refuses forged, stale, unsigned and malformed Slack events; a replay changes nothing", async () => {
    const before = await snapshot();
    const secret = h.emu.demoApp.signingSecret;
    const body = JSON.stringify({
      type: "event_callback",
      team_id: teamId,
      event_id: "Ev-bad-input-1",
      event: { type: "app_uninstalled" },
    });
    const nowS = Math.floor(h.clock.now() / 1000);
    const post = (headers: Record<string, string>, payload = body) =>
      inject({
        method: "POST",
        url: "/slack/events",
        headers: { "content-type": "application/json", ...headers },
        payload,
      });
    for (const headers of [
      {},
      {
        "x-slack-request-timestamp": String(nowS),
        "x-slack-signature": signSlackRequest("wrong-secret", nowS, body),
      },
      {
        "x-slack-request-timestamp": String(nowS - 301),
        "x-slack-signature": signSlackRequest(secret, nowS - 301, body),
      },
      {
        "x-slack-request-timestamp": String(nowS + 301),
        "x-slack-signature": signSlackRequest(secret, nowS + 301, body),
      },
      {
        "x-slack-request-timestamp": String(nowS),
        "x-slack-signature": signSlackRequest(secret, nowS, `${body} `),
      },
      { "x-slack-request-timestamp": "soon", "x-slack-signature": "v0=zz" },
    ]) {
      const res = await post(headers);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: { code: "unauthorized" } });
    }
    const garbage = "{not json";
    const bad = await post(
      {
        "x-slack-request-timestamp": String(nowS),
        "x-slack-signature": signSlackRequest(secret, nowS, garbage),
      },
      garbage,
    );
    expect(bad.statusCode).toBe(400);
    const noId = JSON.stringify({
      type: "event_callback",
      team_id: teamId,
      event: { type: "app_uninstalled" },
    });
    const missing = await post(
      {
        "x-slack-request-timestamp": String(nowS),
        "x-slack-signature": signSlackRequest(secret, nowS, noId),
      },
      noId,
    );
    expect(missing.statusCode).toBe(400);
    const challenge = JSON.stringify({ type: "url_verification", challenge: "abc123" });
    const verified = await post(
      {
        "x-slack-request-timestamp": String(nowS),
        "x-slack-signature": signSlackRequest(secret, nowS, challenge),
      },
      challenge,
    );
    expect(verified.json()).toEqual({ challenge: "abc123" });
    // An event for a team we do not know: acknowledged, nothing changes.
    const stranger = JSON.stringify({
      type: "event_callback",
      team_id: "T-stranger",
      event_id: "Ev-x",
      event: { type: "app_uninstalled" },
    });
    const ack = await post(
      {
        "x-slack-request-timestamp": String(nowS),
        "x-slack-signature": signSlackRequest(secret, nowS, stranger),
      },
      stranger,
    );
    expect(ack.statusCode).toBe(200);
    expect(await snapshot()).toBe(before);
  });

  it("ends bad, reused, expired, cancelled and foreign install flows on a clear page, changing nothing", async () => {
    const before = await snapshot();
    const url = h.server.url;
    for (const path of [
      "/oauth/slack/callback",
      "/oauth/slack/callback?code=abc",
      "/oauth/slack/callback?code=abc&state=garbage",
      "/oauth/slack/callback?code=abc&state=eyJ1c2UiOiJzdGF0ZSJ9.AAAA",
      "/oauth/slack/install?return_url=https%3A%2F%2Fevil.example%2F",
      "/oauth/slack/install?return_url=javascript%3Aalert(1)",
      "/oauth/slack/install?session=forged.token",
    ]) {
      const res = await hop(`${url}${path}`);
      expect(res.status, path).toBe(400);
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(res.headers.get("location")).toBeNull();
    }
    // A state is single use: replaying the callback (the real code and state) is refused.
    h.emu.control.setAuthorize({ mode: "deny" });
    const start = await hop(`${url}/oauth/slack/install?connection_id=${teamId}`);
    const denied = await hop(start.headers.get("location") ?? "");
    const callback = denied.headers.get("location") ?? "";
    expect(callback).toContain("error=access_denied");
    const cancelled = await hop(callback);
    expect(cancelled.status).toBe(200);
    expect(await cancelled.text()).toContain("cancelled");
    expect((await hop(callback)).status).toBe(400); // reused state
    // An expired state: the browser took longer than 10 minutes.
    h.emu.control.setAuthorize({ mode: "approve" });
    const slow = await hop(`${url}/oauth/slack/install`);
    const approved = await hop(slow.headers.get("location") ?? "");
    h.clock.advance(11 * 60_000);
    const expired = await hop(approved.headers.get("location") ?? "");
    expect(expired.status).toBe(400);
    expect(await expired.text()).toContain("expired");
    // A failed exchange (the code was already used) changes nothing either.
    const again = await hop(`${url}/oauth/slack/install`);
    const approved2 = await hop(again.headers.get("location") ?? "");
    const cb = new URL(approved2.headers.get("location") ?? "");
    const code = cb.searchParams.get("code") ?? "";
    await h.emu.control; // the code is spent by exchanging it directly
    await fetch(`${h.emu.url}/api/oauth.v2.access`, {
      method: "POST",
      body: new URLSearchParams({
        code,
        client_id: h.emu.demoApp.clientId,
        client_secret: h.emu.demoApp.clientSecret,
        redirect_uri: `${h.server.publicUrl}/oauth/slack/callback`,
      }),
    });
    const failed = await hop(cb.toString());
    expect(failed.status).toBe(400);
    expect(await failed.text()).toContain("invalid_code");
    expect(await snapshot()).toBe(before);
  });

  it("survives a generated fuzz run of 3000 requests: never a 5xx, always the error shape, store unchanged", async () => {
    const before = await snapshot();
    const segment = fc.oneof(
      fc.constantFrom("T-fuzz", "x", "", "..", "%00", "%2F", "a:b.c-d_e", "🙂", "T".repeat(300)),
      fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)),
    );
    const path = fc.oneof(
      segment.map((s) => `/v1/connections/${s}`),
      segment.map((s) => `/v1/connections/${s}/token`),
      segment.map((s) => `/v1/connections/${s}/refresh`),
      segment.map((s) => `/v1/connections/${s}/check`),
      segment.map((s) => `/v1/connections/${s}/events`),
      fc.tuple(segment, segment).map(([a, b]) => `/v1/proxy/${a}/${b}`),
      fc.constant("/v1/connections"),
      fc.constant("/v1/connect-sessions"),
      fc.constant("/slack/events"),
      fc.constant(`/v1/connections/${teamId}/token`),
      segment.map((s) => `/oauth/slack/callback?state=${s}&code=${s}`),
      segment.map((s) => `/oauth/slack/install?session=${s}`),
      segment.map((s) => `/${s}`),
    );
    const query = fc.option(
      fc.dictionary(
        fc.constantFrom("kind", "min_ttl", "limit", "cursor", "status", "revoke", "before", "x", "provider"),
        fc.oneof(
          fc.string({ maxLength: 10 }),
          fc.integer().map(String),
          fc.constantFrom("bot", "user", "-1", "1e309"),
        ),
        { maxKeys: 3 },
      ),
      { nil: undefined },
    );
    const body = fc.option(
      fc.oneof(
        fc.json({ maxDepth: 3 }),
        fc.string({ maxLength: 50 }),
        fc
          .record(
            {
              id: fc.oneof(segment, fc.integer()),
              provider: fc.oneof(fc.constant("slack"), fc.integer(), fc.string({ maxLength: 5 })),
              credentials: fc.oneof(fc.object({ maxDepth: 2 }), fc.constant({ bot: {} })),
              connection_id: segment,
              return_url: fc.webUrl(),
            },
            { requiredKeys: [] },
          )
          .map((o) => JSON.stringify(o)),
      ),
      { nil: undefined },
    );
    const request = fc.record({
      method: fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH"),
      path,
      query,
      body,
      contentType: fc.constantFrom(
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        undefined,
      ),
      auth: fc.constantFrom(true, true, false),
    });
    let count = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        // The seeded connection is only ever read; every write goes to ids that do not exist.
        if (r.path.includes(teamId) && r.method !== "GET") return;
        count++;
        const qs =
          r.query === undefined ? "" : `${r.path.includes("?") ? "&" : "?"}${new URLSearchParams(r.query)}`;
        const res = await inject({
          method: r.method as InjectOptions["method"] & string,
          url: `${r.path}${qs}`,
          headers: {
            ...(r.auth ? AUTH : {}),
            ...(r.contentType === undefined ? {} : { "content-type": r.contentType }),
          },
          ...(r.body === undefined || r.method === "GET" ? {} : { payload: r.body }),
        });
        if (res.statusCode >= 500)
          throw new Error(`${r.method} ${r.path}${qs} → ${res.statusCode} ${res.body}`);
        if (res.statusCode >= 400 && res.headers["content-type"]?.toString().includes("json")) {
          const parsed = res.json() as { error?: { code?: unknown; message?: unknown } };
          if (typeof parsed.error?.code !== "string" || typeof parsed.error.message !== "string") {
            throw new Error(`no error shape: ${res.body}`);
          }
        }
      }),
      { numRuns: 3000, seed: 4242 },
    );
    expect(count).toBeGreaterThan(2500);
    expect(await snapshot()).toBe(before);
  }, 120_000);
});
