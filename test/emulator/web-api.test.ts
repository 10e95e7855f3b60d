// The Web API auth layer (slack-api.md §4.5, order §4.6) and the emulated methods.
import { describe, expect, it } from "vitest";
import { api, emulator, refresh, str } from "./emulator-harness.js";

async function installed(options: Parameters<typeof emulator>[0] = {}) {
  const emu = await emulator(options);
  const install = emu.control.install({
    clientId: emu.demoApp.clientId,
    botScopes: ["chat:write", "channels:read"],
    userScopes: ["search:read"],
  });
  const bot = str(install, "access_token");
  const user = str(install["authed_user"] as Record<string, unknown>, "access_token");
  return { emu, install, bot, user };
}

describe("token passing (§4.1)", () => {
  it("takes the token from the Bearer header or the form body, refuses it in the query", async () => {
    const { emu, bot } = await installed();
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body["ok"]).toBe(true);
    expect((await api(emu, "auth.test", { token: bot })).body["ok"]).toBe(true);
    const query = await fetch(`${emu.url}/api/auth.test?token=${bot}`);
    expect(await query.json()).toEqual({ ok: false, error: "invalid_auth" });
    expect((await api(emu, "auth.test")).body).toEqual({ ok: false, error: "not_authed" });
    expect((await api(emu, "auth.test", {}, { headers: { authorization: `bearer ${bot}` } })).body).toEqual({
      ok: false,
      error: "not_authed",
    });
    expect((await api(emu, "auth.test", {}, { bearer: "xoxb-garbage" })).body).toEqual({
      ok: false,
      error: "invalid_auth",
    });
  });

  it("ignores a token inside a JSON body (it must travel in the header)", async () => {
    const { emu, bot } = await installed();
    const res = await fetch(`${emu.url}/api/auth.test`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: bot }),
    });
    expect(await res.json()).toEqual({ ok: false, error: "not_authed" });
  });

  it("names body problems before looking at the token (§4.6 step 2)", async () => {
    const { emu, bot } = await installed();
    const post = (headers: Record<string, string>, body: string) =>
      fetch(`${emu.url}/api/auth.test`, {
        method: "POST",
        headers: { authorization: `Bearer ${bot}`, ...headers },
        body,
      }).then((r) => r.json());
    expect(await post({ "content-type": "application/json" }, "{nope")).toEqual({
      ok: false,
      error: "invalid_json",
    });
    expect(await post({ "content-type": "application/json" }, "[1]")).toEqual({
      ok: false,
      error: "json_not_object",
    });
    expect(await post({ "content-type": "application/xml" }, "<a/>")).toEqual({
      ok: false,
      error: "invalid_post_type",
    });
    expect(
      await post({ "content-type": "application/x-www-form-urlencoded; charset=klingon" }, "a=1"),
    ).toEqual({
      ok: false,
      error: "invalid_charset",
    });
    const noType = await fetch(`${emu.url}/api/auth.test`, {
      method: "POST",
      headers: { authorization: `Bearer ${bot}` },
      body: new Uint8Array(Buffer.from("a=1")),
    });
    expect(await noType.json()).toEqual({ ok: false, error: "missing_post_type" });
  });

  it("answers unknown_method for a method it does not know", async () => {
    const { emu, bot } = await installed();
    expect((await api(emu, "files.upload", {}, { bearer: bot })).body).toEqual({
      ok: false,
      error: "unknown_method",
    });
  });
});

describe("auth.test (§4.2)", () => {
  it("answers the bot shape with the bot user id and bot_id, and x-oauth-scopes", async () => {
    const { emu, install, bot } = await installed();
    const res = await api(emu, "auth.test", {}, { bearer: bot });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(res.headers.get("x-oauth-scopes")).toBe("chat:write,channels:read");
    expect(res.body).toMatchObject({
      ok: true,
      team: emu.demoTeam.name,
      team_id: emu.demoTeam.teamId,
      user_id: install["bot_user_id"],
    });
    expect(str(res.body, "url")).toMatch(/^https:\/\/.+\.slack\.com\/$/);
    expect(str(res.body, "bot_id")).toMatch(/^B/);
    expect(res.body).not.toHaveProperty("enterprise_id");
  });

  it("answers the user shape without bot_id", async () => {
    const { emu, user } = await installed();
    const res = await api(emu, "auth.test", {}, { bearer: user });
    expect(res.body).toMatchObject({ ok: true, user_id: emu.demoTeam.userId, user: "demo-user" });
    expect(res.body).not.toHaveProperty("bot_id");
    expect(res.headers.get("x-oauth-scopes")).toBe("search:read");
  });

  it("names each member's own user token as theirs, also after it rotated (what a health check records)", async () => {
    const emu = await emulator();
    const team = emu.control.createTeam({ name: "two members" });
    const members = [emu.control.createUser(team.teamId).userId, emu.control.createUser(team.teamId).userId];
    for (const userId of members) {
      const authed = emu.control.install({
        clientId: emu.demoApp.clientId,
        teamId: team.teamId,
        userId,
        userScopes: ["search:read"],
      })["authed_user"] as Record<string, unknown>;
      const before = await api(emu, "auth.test", {}, { bearer: str(authed, "access_token") });
      expect(before.body).toMatchObject({ ok: true, team_id: team.teamId, user_id: userId });
      expect(before.body).not.toHaveProperty("bot_id");
      const rotated = (await refresh(emu, str(authed, "refresh_token"))).body;
      const after = await api(emu, "auth.test", {}, { bearer: str(rotated, "access_token") });
      expect(after.body).toMatchObject({ ok: true, user_id: userId });
      expect(after.body).not.toHaveProperty("bot_id");
    }
  });

  it("adds enterprise_id for a workspace of an Enterprise Grid org", async () => {
    const emu = await emulator();
    const team = emu.control.createTeam({ enterpriseId: "E0GRID" });
    emu.control.createUser(team.teamId);
    const bot = str(
      emu.control.install({ clientId: emu.demoApp.clientId, teamId: team.teamId }),
      "access_token",
    );
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body).toMatchObject({
      team_id: team.teamId,
      enterprise_id: "E0GRID",
      is_enterprise_install: false,
    });
  });
});

describe("scopes and token types", () => {
  it("answers missing_scope with needed and provided", async () => {
    const { emu, bot, user } = await installed();
    expect((await api(emu, "users.info", { user: emu.demoTeam.userId }, { bearer: bot })).body).toEqual({
      ok: false,
      error: "missing_scope",
      needed: "users:read",
      provided: "chat:write,channels:read",
    });
    expect(
      (await api(emu, "chat.postMessage", { channel: "general", text: "hi" }, { bearer: user })).body,
    ).toMatchObject({
      error: "missing_scope",
      needed: "chat:write",
      provided: "search:read",
    });
  });

  it("runs chat.postMessage, conversations.list and users.info with the right scopes", async () => {
    const emu = await emulator();
    const bot = str(
      emu.control.install({
        clientId: emu.demoApp.clientId,
        botScopes: ["chat:write", "channels:read", "users:read"],
      }),
      "access_token",
    );
    const list = await api(emu, "conversations.list", {}, { bearer: bot });
    const channels = list.body["channels"] as { id: string; name: string }[];
    expect(channels.map((c) => c.name)).toEqual(["general", "random"]);
    const posted = await api(
      emu,
      "chat.postMessage",
      { channel: channels[0]?.id ?? "", text: "hello" },
      { bearer: bot },
    );
    expect(posted.body).toMatchObject({ ok: true, channel: channels[0]?.id, message: { text: "hello" } });
    expect(str(posted.body, "ts")).toMatch(/^\d+\.\d{6}$/);
    expect(
      (await api(emu, "chat.postMessage", { channel: "#nowhere", text: "x" }, { bearer: bot })).body,
    ).toEqual({
      ok: false,
      error: "channel_not_found",
    });
    expect((await api(emu, "chat.postMessage", { channel: "general" }, { bearer: bot })).body).toEqual({
      ok: false,
      error: "no_text",
    });
    const info = await api(emu, "users.info", { user: emu.demoTeam.userId }, { bearer: bot });
    expect(info.body).toMatchObject({ ok: true, user: { id: emu.demoTeam.userId, deleted: false } });
    expect((await api(emu, "users.info", { user: "U0NOBODY" }, { bearer: bot })).body).toEqual({
      ok: false,
      error: "user_not_found",
    });
  });

  it("refuses a refresh token as a bearer with not_allowed_token_type", async () => {
    const { emu, install } = await installed();
    expect((await api(emu, "auth.test", {}, { bearer: str(install, "refresh_token") })).body).toEqual({
      ok: false,
      error: "not_allowed_token_type",
    });
  });
});

describe("auth.revoke (§4.3)", () => {
  it("test mode keeps the token and answers revoked:false", async () => {
    const { emu, bot } = await installed();
    expect((await api(emu, "auth.revoke", { test: "1" }, { bearer: bot })).body).toEqual({
      ok: true,
      revoked: false,
    });
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body["ok"]).toBe(true);
  });

  it("with rotation revokes only that token and sends no events", async () => {
    const { emu, bot, user } = await installed({ eventsUrl: "http://127.0.0.1:9/unused" });
    expect((await api(emu, "auth.revoke", {}, { bearer: user })).body).toEqual({ ok: true, revoked: true });
    expect((await api(emu, "auth.test", {}, { bearer: user })).body).toEqual({
      ok: false,
      error: "token_revoked",
    });
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body["ok"]).toBe(true);
    expect(emu.control.deliveries()).toEqual([]);
    expect((await api(emu, "auth.revoke", {}, { bearer: "xoxb-nope" })).body).toEqual({
      ok: false,
      error: "invalid_auth",
    });
  });

  it("revokes a refresh token passed as the token", async () => {
    const { emu, install } = await installed();
    const rt = str(install, "refresh_token");
    expect((await api(emu, "auth.revoke", {}, { bearer: rt })).body).toEqual({ ok: true, revoked: true });
    expect(emu.control.tokenInfo(rt)).toMatchObject({
      kind: "refresh",
      state: "revoked",
      error: "invalid_refresh_token",
    });
  });

  it("without rotation: revoking the last (bot) token uninstalls: tokens_revoked then app_uninstalled", async () => {
    const emu = await emulator({ eventsUrl: "http://127.0.0.1:9/unused", eventRetryDelaysMs: [] });
    const app = emu.control.createApp({ tokenRotation: false });
    const install = emu.control.install({ clientId: app.clientId, botScopes: ["chat:write"] });
    const bot = str(install, "access_token");
    expect((await api(emu, "auth.revoke", {}, { bearer: bot })).body).toEqual({ ok: true, revoked: true });
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body).toEqual({
      ok: false,
      error: "token_revoked",
    });
    const deliveries = await emu.control.flushEvents();
    expect(deliveries.map((d) => d.type)).toEqual(["tokens_revoked", "app_uninstalled"]);
    const revoked = JSON.parse(deliveries[0]?.body ?? "{}");
    expect(revoked.event.tokens).toEqual({ oauth: [], bot: [install["bot_user_id"]] });
  });

  it("without rotation: revoking one of two tokens sends only tokens_revoked", async () => {
    const emu = await emulator({ eventsUrl: "http://127.0.0.1:9/unused", eventRetryDelaysMs: [] });
    const app = emu.control.createApp({ tokenRotation: false });
    const install = emu.control.install({
      clientId: app.clientId,
      botScopes: ["chat:write"],
      userScopes: ["search:read"],
    });
    const user = str(install["authed_user"] as Record<string, unknown>, "access_token");
    await api(emu, "auth.revoke", {}, { bearer: user });
    const deliveries = await emu.control.flushEvents();
    expect(deliveries.map((d) => d.type)).toEqual(["tokens_revoked"]);
    expect(JSON.parse(deliveries[0]?.body ?? "{}").event.tokens).toEqual({
      oauth: [emu.demoTeam.userId],
      bot: [],
    });
    expect((await api(emu, "auth.test", {}, { bearer: str(install, "access_token") })).body["ok"]).toBe(true);
  });
});

describe("apps.uninstall (§4.4), reinstall, leak, deactivate", () => {
  it("checks client id, secret, token type and app, then uninstalls", async () => {
    const { emu, bot, user, install } = await installed({
      eventsUrl: "http://127.0.0.1:9/unused",
      eventRetryDelaysMs: [],
    });
    const creds = { client_id: emu.demoApp.clientId, client_secret: emu.demoApp.clientSecret };
    expect((await api(emu, "apps.uninstall", creds, { bearer: user })).body).toEqual({
      ok: false,
      error: "not_allowed_token_type",
    });
    expect((await api(emu, "apps.uninstall", { ...creds, client_id: "1.2" }, { bearer: bot })).body).toEqual({
      ok: false,
      error: "invalid_client_id",
    });
    expect(
      (await api(emu, "apps.uninstall", { ...creds, client_secret: "x" }, { bearer: bot })).body,
    ).toEqual({
      ok: false,
      error: "bad_client_secret",
    });
    const other = emu.control.createApp();
    expect(
      (
        await api(
          emu,
          "apps.uninstall",
          { client_id: other.clientId, client_secret: other.clientSecret },
          { bearer: bot },
        )
      ).body,
    ).toEqual({ ok: false, error: "client_id_token_mismatch" });
    expect((await api(emu, "apps.uninstall", creds, { bearer: bot })).body).toEqual({ ok: true });
    // Removed app: bot → account_inactive, user → token_revoked (§4.5); refresh tokens die.
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body).toEqual({
      ok: false,
      error: "account_inactive",
    });
    expect((await api(emu, "auth.test", {}, { bearer: user })).body).toEqual({
      ok: false,
      error: "token_revoked",
    });
    const r = await api(emu, "oauth.v2.access", {
      ...creds,
      grant_type: "refresh_token",
      refresh_token: str(install, "refresh_token"),
    });
    expect(r.body).toEqual({ ok: false, error: "invalid_refresh_token" });
    const deliveries = await emu.control.flushEvents();
    expect(deliveries.map((d) => d.type)).toEqual(["tokens_revoked", "app_uninstalled"]);
    expect(JSON.parse(deliveries[0]?.body ?? "{}").event.tokens).toEqual({
      oauth: [emu.demoTeam.userId],
      bot: [install["bot_user_id"]],
    });
  });

  it("after a reinstall, the old tokens answer invalid_auth and the new ones work", async () => {
    const { emu, bot, user } = await installed();
    emu.control.uninstall({ clientId: emu.demoApp.clientId, teamId: emu.demoTeam.teamId });
    const again = emu.control.reinstall({ clientId: emu.demoApp.clientId, botScopes: ["chat:write"] });
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body).toEqual({
      ok: false,
      error: "invalid_auth",
    });
    expect((await api(emu, "auth.test", {}, { bearer: user })).body).toEqual({
      ok: false,
      error: "invalid_auth",
    });
    expect((await api(emu, "auth.test", {}, { bearer: str(again, "access_token") })).body["ok"]).toBe(true);
    expect(again["scope"]).toBe("chat:write"); // scopes restart after an uninstall
  });

  it("a leaked token answers token_revoked, quietly", async () => {
    const { emu, bot } = await installed({ eventsUrl: "http://127.0.0.1:9/unused" });
    emu.control.leakToken(bot);
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body).toEqual({
      ok: false,
      error: "token_revoked",
    });
    expect(emu.control.tokenInfo(bot)).toMatchObject({ state: "revoked", revokeReason: "leaked" });
    expect(emu.control.deliveries()).toEqual([]);
  });

  it("a deactivated user's token answers account_inactive; the bot token keeps working", async () => {
    const { emu, bot, user } = await installed();
    emu.control.deactivateUser(emu.demoTeam.teamId, emu.demoTeam.userId);
    expect((await api(emu, "auth.test", {}, { bearer: user })).body).toEqual({
      ok: false,
      error: "account_inactive",
    });
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body["ok"]).toBe(true);
  });

  it("non-rotating reinstall without uninstall returns the same long-lived bot token and adds scopes", async () => {
    const emu = await emulator();
    const app = emu.control.createApp({ tokenRotation: false });
    const first = emu.control.install({ clientId: app.clientId, botScopes: ["chat:write"] });
    const second = emu.control.install({ clientId: app.clientId, botScopes: ["users:read"] });
    expect(second["access_token"]).toBe(first["access_token"]);
    expect(second["scope"]).toBe("chat:write,users:read");
  });
});
