// OAuth v2 install: authorize page and redirects (slack-api.md §2.1–2.2), code exchange (§2.3).
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { api, authorizeCode, emulator, str } from "./emulator-harness.js";

describe("GET /oauth/v2/authorize", () => {
  it("shows a consent page whose Allow button redirects with code and state", async () => {
    const emu = await emulator();
    const page = await fetch(
      `${emu.url}/oauth/v2/authorize?client_id=${emu.demoApp.clientId}&scope=chat:write&user_scope=&state=s1`,
    );
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Allow");
    expect(html).toContain("Cancel");
    expect(html).toContain("<code>chat:write</code>");
    const requestId = /name="request" value="([^"]+)"/.exec(html)?.[1] ?? "";
    const allow = await fetch(`${emu.url}/oauth/v2/authorize/decision`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ request: requestId, decision: "allow" }),
      redirect: "manual",
    });
    expect(allow.status).toBe(302);
    const location = new URL(allow.headers.get("location") ?? "");
    expect(location.origin).toBe("http://127.0.0.1");
    expect(location.searchParams.get("state")).toBe("s1");
    expect(location.searchParams.get("code")).toMatch(/^\d+\.\d+\.[0-9a-f]{64}$/);
    // The consent screen is single use.
    const again = await fetch(`${emu.url}/oauth/v2/authorize/decision`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ request: requestId, decision: "allow" }),
      redirect: "manual",
    });
    expect(again.status).toBe(400);
  });

  it("redirects with error=access_denied and the state on Cancel", async () => {
    const emu = await emulator();
    const html = await (
      await fetch(`${emu.url}/oauth/v2/authorize?client_id=${emu.demoApp.clientId}&scope=chat:write&state=s2`)
    ).text();
    const requestId = /name="request" value="([^"]+)"/.exec(html)?.[1] ?? "";
    const cancel = await fetch(`${emu.url}/oauth/v2/authorize/decision`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ request: requestId, decision: "cancel" }),
      redirect: "manual",
    });
    const location = new URL(cancel.headers.get("location") ?? "");
    expect(location.searchParams.get("error")).toBe("access_denied");
    expect(location.searchParams.get("state")).toBe("s2");
    expect(location.searchParams.has("code")).toBe(false);
  });

  it("auto-approves with the autoApprove option, and auto-denies when the control API says so", async () => {
    const emu = await emulator({ autoApprove: true });
    const url = `${emu.url}/oauth/v2/authorize?client_id=${emu.demoApp.clientId}&scope=chat:write&state=s3`;
    const approved = await fetch(url, { redirect: "manual" });
    expect(approved.status).toBe(302);
    expect(new URL(approved.headers.get("location") ?? "").searchParams.has("code")).toBe(true);
    emu.control.setAuthorize({ mode: "deny" });
    const denied = await fetch(url, { redirect: "manual" });
    expect(new URL(denied.headers.get("location") ?? "").searchParams.get("error")).toBe("access_denied");
  });

  it("accepts any loopback port and path for a loopback Redirect URL, and refuses other hosts", async () => {
    const emu = await emulator();
    const ok = await authorizeCode(emu, {
      client_id: emu.demoApp.clientId,
      scope: "chat:write",
      redirect_uri: "http://localhost:4567/slack/oauth_redirect",
    });
    expect(ok.host).toBe("localhost:4567");
    const bad = await fetch(
      `${emu.url}/oauth/v2/authorize?client_id=${emu.demoApp.clientId}&scope=chat:write&redirect_uri=${encodeURIComponent("https://evil.example/cb")}`,
      { redirect: "manual" },
    );
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain("bad_redirect_uri");
    const unknown = await fetch(`${emu.url}/oauth/v2/authorize?client_id=1.2&scope=chat:write`);
    expect(await unknown.text()).toContain("invalid_client_id");
  });

  it("allows sub-paths of a configured https Redirect URL only", async () => {
    const emu = await emulator();
    const app = emu.control.createApp({ redirectUrls: ["https://app.example/slack"] });
    const sub = await authorizeCode(emu, {
      client_id: app.clientId,
      scope: "chat:write",
      redirect_uri: "https://app.example/slack/callback",
    });
    expect(sub.pathname).toBe("/slack/callback");
    const sibling = await fetch(
      `${emu.url}/oauth/v2/authorize?client_id=${app.clientId}&scope=chat:write&redirect_uri=${encodeURIComponent("https://app.example/slackers")}`,
      { redirect: "manual" },
    );
    expect(sibling.status).toBe(400);
  });
});

describe("oauth.v2.access with a code", () => {
  async function code(emu: Awaited<ReturnType<typeof emulator>>, extra: Record<string, string> = {}) {
    const location = await authorizeCode(emu, {
      client_id: emu.demoApp.clientId,
      scope: "chat:write",
      ...extra,
    });
    return location.searchParams.get("code") ?? "";
  }

  it("exchanges a code once, with client credentials in the body, and returns the install shape", async () => {
    const emu = await emulator();
    const c = await code(emu, { user_scope: "search:read" });
    const creds = { client_id: emu.demoApp.clientId, client_secret: emu.demoApp.clientSecret };
    const first = await api(emu, "oauth.v2.access", { ...creds, code: c });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      ok: true,
      token_type: "bot",
      scope: "chat:write",
      app_id: emu.demoApp.appId,
      expires_in: 43200,
      team: { id: emu.demoTeam.teamId, name: emu.demoTeam.name },
      enterprise: null,
      is_enterprise_install: false,
      authed_user: { id: emu.demoTeam.userId, scope: "search:read", token_type: "user", expires_in: 43200 },
    });
    expect(str(first.body, "access_token")).toMatch(/^xoxe\.xoxb-1-/);
    expect(str(first.body, "refresh_token")).toMatch(/^xoxe-1-/);
    expect(str(first.body, "bot_user_id")).toMatch(/^U/);
    const user = first.body["authed_user"] as Record<string, unknown>;
    expect(str(user, "access_token")).toMatch(/^xoxe\.xoxp-1-/);
    expect(str(user, "refresh_token")).toMatch(/^xoxe-1-/);
    const second = await api(emu, "oauth.v2.access", { ...creds, code: c });
    expect(second.body).toEqual({ ok: false, error: "invalid_code" });
  });

  it("accepts HTTP Basic client authentication and a JSON body", async () => {
    const emu = await emulator();
    const c = await code(emu);
    const basic = Buffer.from(`${emu.demoApp.clientId}:${emu.demoApp.clientSecret}`).toString("base64");
    const res = await fetch(`${emu.url}/api/oauth.v2.access`, {
      method: "POST",
      headers: { authorization: `Basic ${basic}`, "content-type": "application/json" },
      body: JSON.stringify({ code: c }),
    });
    expect(await res.json()).toMatchObject({ ok: true, token_type: "bot" });
    const wrong = Buffer.from(`${emu.demoApp.clientId}:nope`).toString("base64");
    const c2 = await code(emu);
    const bad = await api(
      emu,
      "oauth.v2.access",
      { code: c2 },
      { headers: { authorization: `Basic ${wrong}` } },
    );
    expect(bad.body).toEqual({ ok: false, error: "bad_client_secret" });
    // A broken percent-escape is a credential that matches nothing, not a server error.
    for (const [pair, error] of [
      [`${emu.demoApp.clientId}:%E0%A4%A`, "bad_client_secret"],
      [`%zz:${emu.demoApp.clientSecret}`, "invalid_client_id"],
    ] as const) {
      const garbled = await api(
        emu,
        "oauth.v2.access",
        { code: await code(emu) },
        { headers: { authorization: `Basic ${Buffer.from(pair).toString("base64")}` } },
      );
      expect(garbled.body).toEqual({ ok: false, error });
    }
  });

  it("expires codes after 10 minutes on the emulator clock", async () => {
    const emu = await emulator();
    const c = await code(emu);
    emu.control.advance(600);
    const res = await api(emu, "oauth.v2.access", {
      client_id: emu.demoApp.clientId,
      client_secret: emu.demoApp.clientSecret,
      code: c,
    });
    expect(res.body).toEqual({ ok: false, error: "invalid_code" });
    const fresh = await code(emu);
    emu.control.advance(599);
    const ok = await api(emu, "oauth.v2.access", {
      client_id: emu.demoApp.clientId,
      client_secret: emu.demoApp.clientSecret,
      code: fresh,
    });
    expect(ok.body["ok"]).toBe(true);
  });

  it("requires the same redirect_uri as authorize when one was sent there", async () => {
    const emu = await emulator();
    const creds = { client_id: emu.demoApp.clientId, client_secret: emu.demoApp.clientSecret };
    const c = await code(emu, { redirect_uri: "http://127.0.0.1:9999/cb" });
    const missing = await api(emu, "oauth.v2.access", { ...creds, code: c });
    expect(missing.body).toEqual({ ok: false, error: "bad_redirect_uri" });
    const other = await api(emu, "oauth.v2.access", {
      ...creds,
      code: c,
      redirect_uri: "http://127.0.0.1:9999/other",
    });
    expect(other.body).toEqual({ ok: false, error: "bad_redirect_uri" });
    const same = await api(emu, "oauth.v2.access", {
      ...creds,
      code: c,
      redirect_uri: "http://127.0.0.1:9999/cb",
    });
    expect(same.body["ok"]).toBe(true);
  });

  it("checks the code before the client id, then the secret (§2.3.5)", async () => {
    const emu = await emulator();
    expect((await api(emu, "oauth.v2.access", { client_id: "3485157640.XXXX", code: "" })).body).toEqual({
      ok: false,
      error: "invalid_code",
    });
    const c = await code(emu);
    expect(
      (await api(emu, "oauth.v2.access", { client_id: "1.2", client_secret: "x", code: c })).body,
    ).toEqual({
      ok: false,
      error: "invalid_client_id",
    });
    expect(
      (await api(emu, "oauth.v2.access", { client_id: emu.demoApp.clientId, client_secret: "x", code: c }))
        .body,
    ).toEqual({ ok: false, error: "bad_client_secret" });
    expect((await api(emu, "oauth.v2.access", { grant_type: "password" })).body).toEqual({
      ok: false,
      error: "invalid_grant_type",
    });
  });

  it("issues long-lived xoxb/xoxp tokens and no refresh token when rotation is off", async () => {
    const emu = await emulator();
    const app = emu.control.createApp({ tokenRotation: false });
    const location = await authorizeCode(emu, {
      client_id: app.clientId,
      scope: "chat:write",
      user_scope: "chat:write",
    });
    const res = await api(emu, "oauth.v2.access", {
      client_id: app.clientId,
      client_secret: app.clientSecret,
      code: location.searchParams.get("code") ?? "",
    });
    expect(str(res.body, "access_token")).toMatch(/^xoxb-\d+-\d+-[A-Za-z0-9]{24}$/);
    expect(res.body).not.toHaveProperty("refresh_token");
    expect(res.body).not.toHaveProperty("expires_in");
    const user = res.body["authed_user"] as Record<string, unknown>;
    expect(str(user, "access_token")).toMatch(/^xoxp-\d+-\d+-\d+-[0-9a-f]{32}$/);
    expect(user).not.toHaveProperty("refresh_token");
  });

  it("answers a user-only install without top-level token fields, a bot-only one with authed_user.id only", async () => {
    const emu = await emulator();
    const userOnly = emu.control.install({ clientId: emu.demoApp.clientId, userScopes: ["identity.basic"] });
    expect(userOnly).not.toHaveProperty("access_token");
    expect(userOnly).not.toHaveProperty("bot_user_id");
    expect(userOnly["authed_user"]).toMatchObject({ id: emu.demoTeam.userId, scope: "identity.basic" });
    const botOnly = emu.control.install({ clientId: emu.demoApp.clientId, botScopes: ["chat:write"] });
    expect(botOnly["authed_user"]).toEqual({ id: emu.demoTeam.userId });
  });

  it("installs org-wide: team null, enterprise set, is_enterprise_install true", async () => {
    const emu = await emulator({ autoApprove: true });
    const team = emu.control.createTeam({
      name: "Grid WS",
      enterpriseId: "E12345678",
      enterpriseName: "Acme Org",
    });
    const { userId } = emu.control.createUser(team.teamId);
    emu.control.setAuthorize({ teamId: team.teamId, userId, enterpriseInstall: true });
    const location = await authorizeCode(emu, { client_id: emu.demoApp.clientId, scope: "chat:write" });
    const res = await api(emu, "oauth.v2.access", {
      client_id: emu.demoApp.clientId,
      client_secret: emu.demoApp.clientSecret,
      code: location.searchParams.get("code") ?? "",
    });
    expect(res.body).toMatchObject({
      ok: true,
      team: null,
      enterprise: { id: "E12345678", name: "Acme Org" },
      is_enterprise_install: true,
      authed_user: { id: userId },
    });
    const test = await api(emu, "auth.test", {}, { bearer: str(res.body, "access_token") });
    expect(test.body).toMatchObject({
      ok: true,
      team_id: "E12345678",
      enterprise_id: "E12345678",
      is_enterprise_install: true,
    });
  });

  it("supports PKCE for PKCE apps: S256 verifier instead of the client secret", async () => {
    const emu = await emulator();
    const app = emu.control.createApp({ pkce: true });
    const challenge = createHash("sha256").update("secretpassword").digest("base64url");
    expect(challenge).toBe("ldMBaaWcQYtSATMV_IG8mf3wp7A6EW80arYoSW80ntU"); // §2.4 test vector
    const loc = await authorizeCode(emu, {
      client_id: app.clientId,
      scope: "chat:write",
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    const c = loc.searchParams.get("code") ?? "";
    const wrong = await api(emu, "oauth.v2.access", {
      client_id: app.clientId,
      code: c,
      code_verifier: "nope",
    });
    expect(wrong.body).toEqual({ ok: false, error: "invalid_code_verifier" });
    const ok = await api(emu, "oauth.v2.access", {
      client_id: app.clientId,
      code: c,
      code_verifier: "secretpassword",
    });
    expect(ok.body["ok"]).toBe(true);
    // Not a PKCE app: a code with a challenge is refused.
    const loc2 = await authorizeCode(emu, {
      client_id: emu.demoApp.clientId,
      scope: "chat:write",
      code_challenge: challenge,
    });
    const refused = await api(emu, "oauth.v2.access", {
      client_id: emu.demoApp.clientId,
      client_secret: emu.demoApp.clientSecret,
      code: loc2.searchParams.get("code") ?? "",
      code_verifier: "secretpassword",
    });
    expect(refused.body).toEqual({ ok: false, error: "pkce_not_allowed" });
  });
});

describe("control install without a user", () => {
  it("installs as the first active user of that team, not of another team", async () => {
    const emu = await emulator();
    const a = emu.control.createTeam({});
    const b = emu.control.createTeam({});
    const a1 = emu.control.createUser(a.teamId).userId;
    const b1 = emu.control.createUser(b.teamId).userId;
    const b2 = emu.control.createUser(b.teamId).userId;
    const first = emu.control.install({ clientId: emu.demoApp.clientId, teamId: b.teamId });
    expect((first["authed_user"] as { id: string }).id).toBe(b1);
    emu.control.deactivateUser(b.teamId, b1);
    const c = emu.control.createTeam({});
    emu.control.createUser(c.teamId);
    const again = emu.control.install({ clientId: emu.demoApp.clientId, teamId: b.teamId });
    expect((again["authed_user"] as { id: string }).id).toBe(b2);
    const inA = emu.control.install({ clientId: emu.demoApp.clientId, teamId: a.teamId });
    expect((inA["authed_user"] as { id: string }).id).toBe(a1);
  });
});
