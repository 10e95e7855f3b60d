// Token rotation (slack-api.md §3): refresh shapes, grace, siblings, 2-active-token limit, exchange.
import { describe, expect, it } from "vitest";
import { api, emulator, refresh, str } from "./emulator-harness.js";

async function rotatingInstall(options: Parameters<typeof emulator>[0] = {}) {
  const emu = await emulator(options);
  const install = emu.control.install({
    clientId: emu.demoApp.clientId,
    botScopes: ["chat:write"],
    userScopes: ["search:read"],
  });
  const user = install["authed_user"] as Record<string, unknown>;
  return {
    emu,
    bot: { access: str(install, "access_token"), refresh: str(install, "refresh_token") },
    user: { access: str(user, "access_token"), refresh: str(user, "refresh_token") },
  };
}

describe("refresh grant", () => {
  it("answers flat: bot_user_id on a bot refresh, user_id on a user refresh, never authed_user", async () => {
    const { emu, bot, user } = await rotatingInstall();
    const b = await refresh(emu, bot.refresh);
    expect(b.body).toMatchObject({
      ok: true,
      app_id: emu.demoApp.appId,
      token_type: "bot",
      scope: "chat:write",
      expires_in: 43200,
      team: { id: emu.demoTeam.teamId },
      enterprise: null,
      is_enterprise_install: false,
    });
    expect(str(b.body, "bot_user_id")).toMatch(/^U/);
    expect(b.body).not.toHaveProperty("user_id");
    expect(b.body).not.toHaveProperty("authed_user");
    expect(str(b.body, "access_token")).toMatch(/^xoxe\.xoxb-1-/);
    expect(str(b.body, "refresh_token")).not.toBe(bot.refresh);
    const u = await refresh(emu, user.refresh);
    expect(u.body).toMatchObject({
      ok: true,
      token_type: "user",
      user_id: emu.demoTeam.userId,
      scope: "search:read",
    });
    expect(u.body).not.toHaveProperty("bot_user_id");
    expect(str(u.body, "access_token")).toMatch(/^xoxe\.xoxp-1-/);
  });

  it("keeps the previous access token valid after a refresh (§3.4)", async () => {
    const { emu, bot } = await rotatingInstall();
    await refresh(emu, bot.refresh);
    expect((await api(emu, "auth.test", {}, { bearer: bot.access })).body["ok"]).toBe(true);
  });

  it("honours the access TTL knob and answers token_expired after it, on the emulator clock", async () => {
    const { emu, bot } = await rotatingInstall({ accessTtlSeconds: 60 });
    expect(emu.control.tokenInfo(bot.access)).toMatchObject({ state: "active", kind: "bot" });
    emu.control.advance(59);
    expect((await api(emu, "auth.test", {}, { bearer: bot.access })).body["ok"]).toBe(true);
    emu.control.advance(1);
    expect((await api(emu, "auth.test", {}, { bearer: bot.access })).body).toEqual({
      ok: false,
      error: "token_expired",
    });
    // Refresh after expiry is allowed (§3.5 default).
    const r = await refresh(emu, bot.refresh);
    expect(r.body).toMatchObject({ ok: true, expires_in: 60 });
  });

  it("lets a used refresh token work inside the grace period only", async () => {
    const { emu, bot } = await rotatingInstall({ refreshGraceSeconds: 30 });
    expect((await refresh(emu, bot.refresh)).body["ok"]).toBe(true);
    emu.control.advance(29);
    expect((await refresh(emu, bot.refresh)).body["ok"]).toBe(true);
    emu.control.advance(1);
    expect((await refresh(emu, bot.refresh)).body).toEqual({ ok: false, error: "invalid_refresh_token" });
    expect(emu.control.counters()).toMatchObject({
      refreshes: 2,
      invalidRefreshTokenAnswers: 1,
      maxPresentations: 3,
      refreshTokenPresentations: { [bot.refresh]: 3 },
    });
  });

  it("of siblings minted from one parent, only the latest stays valid (node-slack-sdk#2504)", async () => {
    const { emu, bot } = await rotatingInstall();
    const [a, b] = await Promise.all([refresh(emu, bot.refresh), refresh(emu, bot.refresh)]);
    const first = str(a.body, "refresh_token");
    const second = str(b.body, "refresh_token");
    expect(first).not.toBe(second);
    expect(a.body["expires_in"]).toBe(b.body["expires_in"]);
    // The server handled them in arrival order; whichever came last is the survivor.
    const infoA = emu.control.tokenInfo(first);
    const infoB = emu.control.tokenInfo(second);
    const [dead, live] = infoA.state === "superseded_sibling" ? [first, second] : [second, first];
    expect([infoA.state, infoB.state].sort()).toEqual(["active", "superseded_sibling"]);
    expect((await refresh(emu, dead)).body).toEqual({ ok: false, error: "invalid_refresh_token" });
    expect((await refresh(emu, live)).body["ok"]).toBe(true);
  });

  it("keeps at most 2 active access tokens per credential; the 3rd revokes the oldest (token_revoked)", async () => {
    const { emu, bot, user } = await rotatingInstall();
    const r1 = await refresh(emu, bot.refresh);
    const access1 = str(r1.body, "access_token");
    expect((await api(emu, "auth.test", {}, { bearer: bot.access })).body["ok"]).toBe(true);
    const r2 = await refresh(emu, str(r1.body, "refresh_token"));
    expect((await api(emu, "auth.test", {}, { bearer: bot.access })).body).toEqual({
      ok: false,
      error: "token_revoked",
    });
    expect(emu.control.tokenInfo(bot.access)).toMatchObject({
      state: "revoked",
      revokeReason: "active_token_limit",
    });
    expect((await api(emu, "auth.test", {}, { bearer: access1 })).body["ok"]).toBe(true);
    expect((await api(emu, "auth.test", {}, { bearer: str(r2.body, "access_token") })).body["ok"]).toBe(true);
    // Per credential: the user token is untouched.
    expect((await api(emu, "auth.test", {}, { bearer: user.access })).body["ok"]).toBe(true);
    const key = `${emu.demoApp.appId}:${emu.demoTeam.teamId}:bot`;
    expect(emu.control.counters().refreshesPerCredential).toEqual({ [key]: 2 });
  });

  it("does not count an expired token against the limit", async () => {
    const { emu, bot } = await rotatingInstall({ accessTtlSeconds: 100 });
    emu.control.advance(100);
    const r1 = await refresh(emu, bot.refresh);
    const r2 = await refresh(emu, str(r1.body, "refresh_token"));
    expect(emu.control.tokenInfo(str(r1.body, "access_token")).state).toBe("active");
    expect(emu.control.tokenInfo(str(r2.body, "access_token")).state).toBe("active");
    expect(emu.control.tokenInfo(bot.access).state).toBe("expired");
  });

  it("refuses unknown tokens, other apps' tokens and bad clients without ever saying invalid_grant", async () => {
    const { emu, bot } = await rotatingInstall();
    const other = emu.control.createApp();
    expect((await refresh(emu, "xoxe-1-nope")).body).toEqual({ ok: false, error: "invalid_refresh_token" });
    expect((await refresh(emu, bot.refresh, other)).body).toEqual({
      ok: false,
      error: "invalid_refresh_token",
    });
    expect((await refresh(emu, bot.refresh, { ...emu.demoApp, clientSecret: "x" })).body).toEqual({
      ok: false,
      error: "bad_client_secret",
    });
    expect((await refresh(emu, bot.refresh, { ...emu.demoApp, clientId: "1.2" })).body).toEqual({
      ok: false,
      error: "invalid_client_id",
    });
    const missing = await api(emu, "oauth.v2.access", {
      client_id: emu.demoApp.clientId,
      client_secret: emu.demoApp.clientSecret,
      grant_type: "refresh_token",
    });
    expect(missing.body).toEqual({ ok: false, error: "invalid_refresh_token" });
    // The original still works: none of the refusals spent it.
    expect((await refresh(emu, bot.refresh)).body["ok"]).toBe(true);
  });

  it("refreshes with HTTP Basic client credentials (python/java SDK style)", async () => {
    const { emu, bot } = await rotatingInstall();
    const basic = Buffer.from(`${emu.demoApp.clientId}:${emu.demoApp.clientSecret}`).toString("base64");
    const r = await api(
      emu,
      "oauth.v2.access",
      { grant_type: "refresh_token", refresh_token: bot.refresh },
      { headers: { authorization: `Basic ${basic}` } },
    );
    expect(r.body["ok"]).toBe(true);
  });
});

describe("turning rotation on", () => {
  it("is one-way", async () => {
    const emu = await emulator();
    const app = emu.control.createApp({ tokenRotation: false });
    expect(() => emu.control.setTokenRotation(emu.demoApp.clientId, false)).toThrow(/may not be turned off/);
    emu.control.setTokenRotation(app.clientId, true);
    expect(() => emu.control.setTokenRotation(app.clientId, false)).toThrow(/may not be turned off/);
  });
});

describe("oauth.v2.exchange", () => {
  it("exchanges a long-lived token once; the legacy token expires at the first refresh of the new pair", async () => {
    const emu = await emulator();
    const app = emu.control.createApp({ tokenRotation: false });
    const legacy = str(emu.control.install({ clientId: app.clientId }), "access_token");
    const creds = { client_id: app.clientId, client_secret: app.clientSecret };
    expect((await api(emu, "oauth.v2.exchange", { ...creds, token: legacy })).body).toEqual({
      ok: false,
      error: "token_rotation_not_enabled",
    });
    emu.control.setTokenRotation(app.clientId, true);
    const ex = await api(emu, "oauth.v2.exchange", { ...creds, token: legacy });
    expect(ex.body).toMatchObject({ ok: true, token_type: "bot", expires_in: 43200, app_id: app.appId });
    expect(str(ex.body, "access_token")).toMatch(/^xoxe\.xoxb-1-/);
    expect(str(ex.body, "bot_user_id")).toMatch(/^U/);
    expect((await api(emu, "oauth.v2.exchange", { ...creds, token: legacy })).body).toEqual({
      ok: false,
      error: "token_already_exchanged",
    });
    // Until the first refresh the legacy token keeps working.
    expect((await api(emu, "auth.test", {}, { bearer: legacy })).body["ok"]).toBe(true);
    expect((await refresh(emu, str(ex.body, "refresh_token"), app)).body["ok"]).toBe(true);
    expect((await api(emu, "auth.test", {}, { bearer: legacy })).body).toEqual({
      ok: false,
      error: "token_expired",
    });
  });

  it("names bad clients and tokens", async () => {
    const emu = await emulator();
    const creds = { client_id: emu.demoApp.clientId, client_secret: emu.demoApp.clientSecret };
    expect(
      (await api(emu, "oauth.v2.exchange", { client_id: "1.2", client_secret: "x", token: "xoxb-1" })).body,
    ).toEqual({
      ok: false,
      error: "invalid_client_id",
    });
    expect(
      (await api(emu, "oauth.v2.exchange", { ...creds, client_secret: "x", token: "xoxb-1" })).body,
    ).toEqual({
      ok: false,
      error: "bad_client_secret",
    });
    expect((await api(emu, "oauth.v2.exchange", { ...creds, token: "xoxb-unknown" })).body).toEqual({
      ok: false,
      error: "invalid_token",
    });
    const rotating = str(emu.control.install({ clientId: emu.demoApp.clientId }), "access_token");
    expect((await api(emu, "oauth.v2.exchange", { ...creds, token: rotating })).body).toEqual({
      ok: false,
      error: "invalid_token",
    });
    const app = emu.control.createApp({ tokenRotation: false });
    const legacy = str(emu.control.install({ clientId: app.clientId }), "access_token");
    emu.control.setTokenRotation(app.clientId, true);
    emu.control.uninstall({ clientId: app.clientId, teamId: emu.demoTeam.teamId });
    expect(
      (
        await api(emu, "oauth.v2.exchange", {
          client_id: app.clientId,
          client_secret: app.clientSecret,
          token: legacy,
        })
      ).body,
    ).toEqual({ ok: false, error: "authorization_not_found" });
  });
});
