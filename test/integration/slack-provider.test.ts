import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { RefreshInput } from "../../src/core/ports.js";
import { Secret } from "../../src/core/secret.js";
import { createSlackProvider, type SlackProvider } from "../../src/providers/slack/slack-provider.js";
import { closedPort } from "../helpers/closed-port.js";

/** One canned answer; `hang` never answers (until the client gives up). */
type Reply = { status?: number; headers?: Record<string, string>; body: unknown } | "hang";

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  form: URLSearchParams;
}

const CLIENT_ID = "2141029472.691202649728";
const CLIENT_SECRET = "e1b9e11dfcd19c1982d5de12921e17e8";
const REFRESH = "xoxe-1-OLD-refresh-token-value";
const NOW = 1_700_000_000_000;
const clock = { now: () => NOW };

let server: Server;
let baseUrl: string;
let replies: Reply[] = [];
let seen: Seen[] = [];
let onRequest: (() => void) | null = null;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        form: new URLSearchParams(Buffer.concat(chunks).toString("utf8")),
      });
      onRequest?.();
      const reply = replies.shift() ?? { status: 404, body: "no canned reply" };
      if (reply === "hang") return;
      const text = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
      res.writeHead(reply.status ?? 200, {
        "content-type": typeof reply.body === "string" ? "text/html" : "application/json; charset=utf-8",
        ...reply.headers,
      });
      res.end(text);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await once(server, "close");
});

beforeEach(() => {
  replies = [];
  seen = [];
  onRequest = null;
});

function provider(extra: Partial<Parameters<typeof createSlackProvider>[0]> = {}): SlackProvider {
  return createSlackProvider({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, baseUrl, clock, ...extra });
}

function input(kind: "bot" | "user" = "bot"): RefreshInput {
  return {
    ref: { connectionId: "T9TK3CUKW", kind },
    refreshToken: new Secret(REFRESH),
    tokenType: kind,
    scopes: ["commands", "chat:write"],
    providerData: {},
  };
}

const signal = () => AbortSignal.timeout(5_000);

const FLAT_BOT_REFRESH = {
  ok: true,
  app_id: "A0KRD7HC3",
  scope: "commands,incoming-webhook",
  token_type: "bot",
  access_token: "xoxe.xoxb-1-NEW-access",
  bot_user_id: "U0KRQLJ9H",
  refresh_token: "xoxe-1-NEW-refresh",
  expires_in: 43200,
  team: { id: "T9TK3CUKW", name: "Slack Softball Team" },
  enterprise: null,
  is_enterprise_install: false,
};

const NESTED_USER_REFRESH = {
  ok: true,
  app_id: "A0KRD7HC3",
  team: { id: "T9TK3CUKW", name: "Slack Softball Team" },
  enterprise: null,
  authed_user: {
    id: "U1234",
    scope: "chat:write,search:read",
    access_token: "xoxe.xoxp-1-NEW-user",
    refresh_token: "xoxe-1-NEW-user-refresh",
    expires_in: 43201,
    token_type: "user",
  },
};

describe("Slack provider: refresh (oauth.v2.access, slack-api.md §3.3)", () => {
  it("sends a form with the refresh token and client credentials in the body by default", async () => {
    replies.push({ body: FLAT_BOT_REFRESH });
    const outcome = await provider().refresh(input(), signal());
    const req = seen[0]!;
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/api/oauth.v2.access");
    expect(req.headers["content-type"]).toBe("application/x-www-form-urlencoded");
    expect(req.headers.authorization).toBeUndefined();
    expect(Object.fromEntries(req.form)).toEqual({
      grant_type: "refresh_token",
      refresh_token: REFRESH,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
    });
    expect(outcome.kind).toBe("refreshed");
    if (outcome.kind !== "refreshed") return;
    expect(outcome.tokens.accessToken.reveal()).toBe("xoxe.xoxb-1-NEW-access");
    expect(outcome.tokens.refreshToken?.reveal()).toBe("xoxe-1-NEW-refresh");
    expect(outcome.tokens.expiresAtMs).toBe(NOW + 43_200_000);
    expect(outcome.tokens.scopes).toEqual(["commands", "incoming-webhook"]);
    expect(outcome.tokens.tokenType).toBe("bot");
    expect(outcome.providerData).toEqual({
      app_id: "A0KRD7HC3",
      is_enterprise_install: false,
      team_id: "T9TK3CUKW",
      team_name: "Slack Softball Team",
      bot_user_id: "U0KRQLJ9H",
      client_id: CLIENT_ID,
    });
    expect(JSON.stringify(outcome)).not.toContain("xoxe");
  });

  it("sends client credentials as HTTP Basic when asked, and not in the body", async () => {
    replies.push({ body: FLAT_BOT_REFRESH });
    const outcome = await provider({ clientAuth: "basic" }).refresh(input(), signal());
    const req = seen[0]!;
    expect(req.headers.authorization).toBe(
      `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString("base64")}`,
    );
    expect(Object.fromEntries(req.form)).toEqual({ grant_type: "refresh_token", refresh_token: REFRESH });
    expect(outcome.kind).toBe("refreshed");
  });

  it("accepts a user token nested under authed_user (§3.3 third-party claim)", async () => {
    replies.push({ body: NESTED_USER_REFRESH });
    const outcome = await provider().refresh(input("user"), signal());
    expect(outcome.kind).toBe("refreshed");
    if (outcome.kind !== "refreshed") return;
    expect(outcome.tokens.accessToken.reveal()).toBe("xoxe.xoxp-1-NEW-user");
    expect(outcome.tokens.refreshToken?.reveal()).toBe("xoxe-1-NEW-user-refresh");
    expect(outcome.tokens.expiresAtMs).toBe(NOW + 43_201_000);
    expect(outcome.tokens.tokenType).toBe("user");
    expect(outcome.tokens.scopes).toEqual(["chat:write", "search:read"]);
    expect(outcome.providerData).toMatchObject({ user_id: "U1234", team_id: "T9TK3CUKW" });
  });

  it("accepts a flat user refresh with user_id", async () => {
    const { bot_user_id: _drop, ...rest } = FLAT_BOT_REFRESH;
    replies.push({
      body: { ...rest, token_type: "user", user_id: "U1234", access_token: "xoxe.xoxp-1-FLAT" },
    });
    const outcome = await provider().refresh(input("user"), signal());
    expect(outcome).toMatchObject({ kind: "refreshed", providerData: { user_id: "U1234" } });
  });

  it("keeps the old refresh token when the reply has none (null), and the old scopes when it names none", async () => {
    replies.push({
      body: { ok: true, access_token: "xoxe.xoxb-1-ONLY-access", token_type: "bot", expires_in: 43200 },
    });
    const outcome = await provider().refresh(input(), signal());
    expect(outcome.kind).toBe("refreshed");
    if (outcome.kind !== "refreshed") return;
    expect(outcome.tokens.refreshToken).toBeNull();
    expect(outcome.tokens.scopes).toEqual(["commands", "chat:write"]);
  });

  it("treats ok:true without a token as in doubt: the refresh token may be spent", async () => {
    replies.push({ body: { ok: true } });
    expect(await provider().refresh(input(), signal())).toEqual({
      kind: "failed",
      classification: { kind: "transient", reason: "provider_unavailable", error: "invalid_response" },
      mayHaveReachedProvider: true,
    });
  });

  it.each([
    ["invalid_refresh_token", { kind: "dead", reason: "invalid_refresh_token" }, false],
    ["token_revoked", { kind: "dead", reason: "token_revoked" }, false],
    ["bad_client_secret", { kind: "misconfigured", reason: "provider_misconfigured" }, false],
    ["invalid_client_id", { kind: "misconfigured", reason: "provider_misconfigured" }, false],
    ["internal_error", { kind: "transient", reason: "provider_unavailable" }, true],
    ["something_new", { kind: "transient", reason: "provider_unavailable" }, true],
  ] as const)("classifies HTTP 200 ok:false %s from the body", async (code, expected, inDoubt) => {
    replies.push({ body: { ok: false, error: code } });
    const outcome = await provider().refresh(input(), signal());
    expect(outcome).toEqual({
      kind: "failed",
      classification: { ...expected, error: code },
      mayHaveReachedProvider: inDoubt,
    });
  });

  it("reads invalid_refresh_token for a token another client id was issued as this warden's misconfiguration", async () => {
    const issuedElsewhere = { ...input(), providerData: { client_id: "999.999" } };
    replies.push({ body: { ok: false, error: "invalid_refresh_token" } });
    expect(await provider().refresh(issuedElsewhere, signal())).toEqual({
      kind: "failed",
      classification: {
        kind: "misconfigured",
        reason: "provider_misconfigured",
        error: "client_id_mismatch",
        scope: "credential",
      },
      mayHaveReachedProvider: false,
    });
    // Issued to this client, or to one nobody recorded (an imported token): the token is dead.
    for (const providerData of [{ client_id: CLIENT_ID }, {}]) {
      replies.push({ body: { ok: false, error: "invalid_refresh_token" } });
      expect(await provider().refresh({ ...input(), providerData }, signal())).toMatchObject({
        classification: { kind: "dead", reason: "invalid_refresh_token" },
      });
    }
    // Another client's token refused for another reason keeps that reason.
    replies.push({ body: { ok: false, error: "token_revoked" } });
    expect(await provider().refresh(issuedElsewhere, signal())).toMatchObject({
      classification: { kind: "dead", reason: "token_revoked" },
    });
  });

  it("treats an RFC-style 400 invalid_grant as terminal", async () => {
    replies.push({ status: 400, body: { error: "invalid_grant", error_description: "revoked" } });
    const outcome = await provider().refresh(input(), signal());
    expect(outcome).toMatchObject({
      kind: "failed",
      classification: { kind: "dead", reason: "invalid_grant" },
    });
  });

  it("429 is rate_limited with Retry-After in ms; Slack did not act on it", async () => {
    replies.push({
      status: 429,
      headers: { "retry-after": "30" },
      body: { ok: false, error: "ratelimited" },
    });
    expect(await provider().refresh(input(), signal())).toEqual({
      kind: "failed",
      classification: {
        kind: "transient",
        reason: "rate_limited",
        error: "ratelimited",
        retryAfterMs: 30_000,
      },
      mayHaveReachedProvider: false,
    });
  });

  it("500 with an HTML page is transient and in doubt", async () => {
    replies.push({ status: 500, body: "<html><title>Server Error | Slack</title></html>" });
    expect(await provider().refresh(input(), signal())).toEqual({
      kind: "failed",
      classification: { kind: "transient", reason: "provider_unavailable", error: "http_500" },
      mayHaveReachedProvider: true,
    });
  });

  it("200 with a body that is not JSON is transient and in doubt", async () => {
    replies.push({ status: 200, body: "<html>captive portal</html>" });
    expect(await provider().refresh(input(), signal())).toMatchObject({
      kind: "failed",
      classification: { kind: "transient", error: "invalid_response" },
      mayHaveReachedProvider: true,
    });
  });

  it("a hang aborted by our signal may have reached Slack", async () => {
    replies.push("hang");
    const controller = new AbortController();
    onRequest = () => controller.abort();
    const outcome = await provider().refresh(input(), controller.signal);
    expect(outcome).toEqual({
      kind: "failed",
      classification: { kind: "transient", reason: "provider_unavailable", error: "aborted" },
      mayHaveReachedProvider: true,
    });
  });

  it("a hang cut by a timeout signal is a timeout that may have reached Slack", async () => {
    replies.push("hang");
    const outcome = await provider().refresh(input(), AbortSignal.timeout(50));
    expect(outcome).toMatchObject({
      kind: "failed",
      classification: { kind: "transient", error: "timeout" },
      mayHaveReachedProvider: true,
    });
  });

  it("a refused connection provably never reached Slack", async () => {
    const port = await closedPort();
    const outcome = await provider({ baseUrl: `http://127.0.0.1:${port}` }).refresh(input(), signal());
    expect(outcome).toEqual({
      kind: "failed",
      classification: { kind: "transient", reason: "provider_unavailable", error: "ECONNREFUSED" },
      mayHaveReachedProvider: false,
    });
  });

  it("an already aborted signal sends nothing", async () => {
    const outcome = await provider().refresh(input(), AbortSignal.abort());
    expect(outcome).toMatchObject({ kind: "failed", mayHaveReachedProvider: false });
    expect(seen).toHaveLength(0);
  });

  it("never throws when the injected fetch does, and never echoes a token", async () => {
    const fetch = async () => {
      throw new Error(`boom with ${REFRESH}`);
    };
    const outcome = await provider({ fetch }).refresh(input(), signal());
    expect(outcome).toMatchObject({ kind: "failed", classification: { error: "network_error" } });
    expect(JSON.stringify(outcome)).not.toContain(REFRESH);
  });
});

describe("Slack provider: auth.test, auth.revoke (slack-api.md §4.2, §4.3)", () => {
  it("checks a token with a Bearer header and returns non-secret facts", async () => {
    replies.push({
      body: {
        ok: true,
        url: "https://subarachnoid.slack.com/",
        team: "Subarachnoid Workspace",
        user: "bot",
        team_id: "T0G9PQBBK",
        user_id: "W23456789",
        bot_id: "BZYBOTHED",
        enterprise_id: "E12345678",
      },
    });
    const outcome = await provider().check(new Secret("xoxe.xoxb-1-abc"), signal());
    expect(seen[0]!.url).toBe("/api/auth.test");
    expect(seen[0]!.headers.authorization).toBe("Bearer xoxe.xoxb-1-abc");
    expect(outcome).toEqual({
      kind: "ok",
      providerData: {
        team_id: "T0G9PQBBK",
        team_name: "Subarachnoid Workspace",
        user_id: "W23456789",
        bot_id: "BZYBOTHED",
        enterprise_id: "E12345678",
        url: "https://subarachnoid.slack.com/",
      },
      installation: { team_id: "T0G9PQBBK", enterprise_id: "E12345678" },
      // A bot token's user_id is its bot user: nothing of the credential's member.
      credential: {},
    });
  });

  it("names the member a user token is of (user_id, no bot_id: §4.2's user token answer)", async () => {
    replies.push({
      body: {
        ok: true,
        url: "https://subarachnoid.slack.com/",
        team: "Subarachnoid Workspace",
        user: "grace",
        team_id: "T12345678",
        user_id: "W12345678",
      },
    });
    const outcome = await provider().check(new Secret("xoxe.xoxp-1-abc"), signal());
    expect(outcome).toMatchObject({
      kind: "ok",
      installation: { team_id: "T12345678" },
      credential: { user_id: "W12345678" },
    });
  });

  it.each([
    ["token_expired", "refreshable"],
    ["invalid_auth", "dead"],
    ["account_inactive", "dead"],
  ] as const)("classifies a failed check: %s → %s", async (code, kind) => {
    replies.push({ body: { ok: false, error: code } });
    const outcome = await provider().check(new Secret("xoxe.xoxb-1-abc"), signal());
    expect(outcome).toMatchObject({ kind: "failed", classification: { kind, error: code } });
  });

  it("revokes with auth.revoke", async () => {
    replies.push({ body: { ok: true, revoked: true } });
    const outcome = await provider().revoke(new Secret("xoxe.xoxp-1-abc"), signal());
    expect(seen[0]!.url).toBe("/api/auth.revoke");
    expect(seen[0]!.headers.authorization).toBe("Bearer xoxe.xoxp-1-abc");
    expect(outcome).toEqual({ kind: "ok", providerData: { revoked: true } });
  });

  it("classifies API errors seen by callers", () => {
    expect(provider().classifyApiError("token_expired", 200)).toEqual({
      kind: "refreshable",
      error: "token_expired",
    });
  });
});

describe("Slack provider: install flow (slack-api.md §2)", () => {
  it("builds the authorize URL below the base URL with comma-joined scopes", () => {
    const url = new URL(
      provider().authorizeUrl({
        state: "s1",
        redirectUri: "https://app.example/oauth/slack/callback",
        scopes: ["commands", "chat:write"],
        userScopes: ["search:read"],
        team: "T1",
      }),
    );
    expect(`${url.origin}${url.pathname}`).toBe(`${baseUrl}/oauth/v2/authorize`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: CLIENT_ID,
      scope: "commands,chat:write",
      user_scope: "search:read",
      redirect_uri: "https://app.example/oauth/slack/callback",
      state: "s1",
      team: "T1",
    });
  });

  it("exchanges a code for a bot and a user token set", async () => {
    replies.push({
      body: {
        ...FLAT_BOT_REFRESH,
        enterprise: { id: "E12345678", name: "slack-sports" },
        authed_user: NESTED_USER_REFRESH.authed_user,
      },
    });
    const r = await provider().exchangeCode(
      { code: "4724469134.4644", redirectUri: "https://x/cb" },
      signal(),
    );
    expect(Object.fromEntries(seen[0]!.form)).toEqual({
      grant_type: "authorization_code",
      code: "4724469134.4644",
      redirect_uri: "https://x/cb",
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
    });
    expect(r.kind).toBe("installed");
    if (r.kind !== "installed") return;
    const { bot, user, ...facts } = r.installation;
    expect(facts).toEqual({
      appId: "A0KRD7HC3",
      clientId: CLIENT_ID,
      teamId: "T9TK3CUKW",
      teamName: "Slack Softball Team",
      enterpriseId: "E12345678",
      enterpriseName: "slack-sports",
      isEnterpriseInstall: false,
      authedUserId: "U1234",
    });
    expect(bot?.accessToken.reveal()).toBe("xoxe.xoxb-1-NEW-access");
    expect(bot?.botUserId).toBe("U0KRQLJ9H");
    expect(bot?.expiresAtMs).toBe(NOW + 43_200_000);
    expect(user?.accessToken.reveal()).toBe("xoxe.xoxp-1-NEW-user");
    expect(user?.userId).toBe("U1234");
    expect(user?.tokenType).toBe("user");
  });

  it("exchanges a code for a non-rotating user-only install", async () => {
    replies.push({
      body: {
        ok: true,
        app_id: "A0118NQPZZC",
        authed_user: {
          id: "U065VRX1T0",
          scope: "identity.basic",
          access_token: "xoxp-yoda",
          token_type: "user",
        },
        team: { id: "T024BE7LD" },
        enterprise: null,
        is_enterprise_install: false,
      },
    });
    const r = await provider().exchangeCode({ code: "c" }, signal());
    expect(r).toMatchObject({ kind: "installed", installation: { teamId: "T024BE7LD", teamName: null } });
    if (r.kind !== "installed") return;
    expect(r.installation.bot).toBeUndefined();
    expect(r.installation.user?.expiresAtMs).toBeNull();
    expect(r.installation.user?.refreshToken).toBeNull();
  });

  it("reports a refused code with Slack's error", async () => {
    replies.push({ body: { ok: false, error: "invalid_code" } });
    const r = await provider().exchangeCode({ code: "used" }, signal());
    expect(r).toEqual({
      kind: "failed",
      classification: { kind: "transient", reason: "provider_unavailable", error: "invalid_code" },
    });
  });

  it("exchanges a legacy token for a rotating pair (oauth.v2.exchange)", async () => {
    replies.push({
      body: {
        ok: true,
        access_token: "xoxe.xoxb-1-X",
        expires_in: 43200,
        refresh_token: "xoxe-1-X",
        token_type: "bot",
        scope: "commands",
        bot_user_id: "U123456",
        app_id: "A123456",
        team: { name: "Slack Softball Team", id: "T123456" },
      },
    });
    const r = await provider({ clientAuth: "basic" }).exchangeLegacyToken(
      new Secret("xoxb-legacy"),
      signal(),
    );
    expect(seen[0]!.url).toBe("/api/oauth.v2.exchange");
    expect(Object.fromEntries(seen[0]!.form)).toEqual({ token: "xoxb-legacy" });
    expect(r).toMatchObject({
      kind: "refreshed",
      providerData: { bot_user_id: "U123456", team_id: "T123456" },
    });
  });
});
