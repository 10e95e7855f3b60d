// Issue 5's scenario suite: each cause reproduced in the emulator, diagnosed by the same
// functions the CLI calls, checking verdict, refreshable, the leading cause, and that no
// refresh token was spent unless asked (the emulator counts every presentation).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diagnoseApp } from "../../src/cli/diagnose/diagnose-app.js";
import { diagnoseConnection } from "../../src/cli/diagnose/diagnose-connection.js";
import { diagnoseToken } from "../../src/cli/diagnose/diagnose-token.js";
import { STALE_FLAG_MS } from "../../src/core/provider-flag-times.js";
import type { Diagnosis } from "../../src/diagnose/diagnosis.js";
import { iso } from "../../src/diagnose/explain-connection.js";
import { startSlackEmulator } from "../../src/emulator/index.js";
import type { Warden } from "../../src/engine/warden.js";
import { type EngineHarness, grantTokens, openEngineHarness } from "../helpers/engine-harness.js";

let h: EngineHarness;
/** Where an emulator was and is no longer: "emulator down". */
let downUrl: string;
beforeAll(async () => {
  h = await openEngineHarness("sqlite");
  const gone = await startSlackEmulator();
  downUrl = gone.url;
  await gone.close();
});
afterAll(() => h.close());

/** Every refresh-token presentation the emulator has seen, summed over tokens. */
const presentations = () =>
  Object.values(h.emu.control.counters().refreshTokenPresentations).reduce((a, b) => a + b, 0);

/** Runs a token diagnosis and asserts no refresh token reached the emulator meanwhile. */
async function diagnoseWithoutSpending(
  token: string,
  extra: { requiredScopes?: string[] } = {},
): Promise<Diagnosis> {
  const before = presentations();
  const { diagnosis } = await diagnoseToken({ token, baseUrl: h.emu.url, ...extra });
  expect(presentations()).toBe(before);
  return diagnosis;
}

function expectDiagnosis(
  d: Diagnosis,
  verdict: Diagnosis["verdict"],
  refreshable: boolean | null,
  leading: string | null,
) {
  expect({ verdict: d.verdict, refreshable: d.refreshable, leading: d.causes[0]?.code ?? null }).toEqual({
    verdict,
    refreshable,
    leading,
  });
}

function install(options: { clientId?: string; userScopes?: string[]; botScopes?: string[] } = {}) {
  const team = h.emu.control.createTeam({});
  const { userId } = h.emu.control.createUser(team.teamId);
  const body = h.emu.control.install({
    clientId: options.clientId ?? h.emu.demoApp.clientId,
    teamId: team.teamId,
    userId,
    botScopes: options.botScopes ?? ["chat:write"],
    ...(options.userScopes ? { userScopes: options.userScopes } : {}),
  });
  const user = (body["authed_user"] ?? {}) as Record<string, unknown>;
  return {
    teamId: team.teamId,
    userId,
    bot: body["access_token"] as string,
    refresh: body["refresh_token"] as string,
    user: user["access_token"] as string | undefined,
  };
}

/** Flags Slack as refusing our client credentials (as a refused refresh would), or clears the flag. */
async function setSlackState(harness: EngineHarness, status: "ok" | "misconfigured"): Promise<void> {
  const flagged = status === "misconfigured";
  await harness.store.setProviderState({
    provider: "slack",
    status,
    reason: flagged ? "provider_misconfigured" : null,
    lastError: flagged ? "bad_client_secret" : null,
    sinceMs: harness.clock.now(),
  });
}

async function connectionDiagnosis(id: string, warden: Warden = h.warden): Promise<Diagnosis> {
  const before = presentations();
  const r = await diagnoseConnection({
    id,
    store: h.store,
    warden,
    baseUrl: h.emu.url,
    nowMs: h.clock.now(),
  });
  expect(presentations()).toBe(before);
  return r.diagnosis;
}

/** Another system holding a copy of the refresh token (the integration we migrated from) spends it. */
async function spendElsewhere(refreshToken: string): Promise<void> {
  await fetch(`${h.emu.url}/api/oauth.v2.access`, {
    method: "POST",
    body: new URLSearchParams({
      client_id: h.emu.demoApp.clientId,
      client_secret: h.emu.demoApp.clientSecret,
      grant_type: "refresh_token",
      refresh_token: refreshToken,
    }),
  });
}

/** Reinstalls the team in the emulator and imports the new tokens under the same id: a reconnect. */
async function reconnect(id: string, teamId: string): Promise<Record<string, unknown>> {
  const body = h.emu.control.reinstall({
    clientId: h.emu.demoApp.clientId,
    teamId,
    botScopes: ["chat:write", "channels:read"],
  });
  await h.warden.connections.import({
    id,
    provider: "slack",
    credentials: { bot: { ...grantTokens(body), scopes: body["scope"] as string } },
  });
  expect((await h.warden.connections.get(id)).status).toBe("active");
  return body;
}

/** Moves both clocks (the warden's and the emulator's) forward. */
function advance(seconds: number): void {
  h.clock.advance(seconds * 1000);
  h.emu.control.advance(seconds);
}

describe("diagnose token, against the emulator", () => {
  it("a working rotating bot token is healthy and refreshable", async () => {
    const t = install();
    const d = await diagnoseWithoutSpending(t.bot);
    expectDiagnosis(d, "healthy", true, null);
    expect(d.token).toEqual({ kind: "bot", rotating: true });
    expect(d.error).toBeNull();
  });

  it("uninstall: a bot token answers account_inactive → inactive, app_uninstalled", async () => {
    const t = install();
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: t.teamId });
    const d = await diagnoseWithoutSpending(t.bot);
    expectDiagnosis(d, "inactive", false, "app_uninstalled");
    expect(d.error).toBe("account_inactive");
    expect(d.fix.join("\n")).toMatch(/Reinstall the app or re-run OAuth/);
  });

  it("admin revoke of a rotating token → revoked, admin_revoked", async () => {
    const t = install();
    h.emu.control.revokeToken(t.bot);
    const d = await diagnoseWithoutSpending(t.bot);
    expectDiagnosis(d, "revoked", false, "admin_revoked");
    expect(d.causes.map((c) => c.code)).toContain("leaked_and_auto_revoked");
  });

  it("expiry: after 12 h → expired, refreshable, access_token_expired", async () => {
    const t = install();
    h.emu.control.advance(43_200);
    h.clock.advance(43_200_000);
    const d = await diagnoseWithoutSpending(t.bot);
    expectDiagnosis(d, "expired", true, "access_token_expired");
    expect(d.error).toBe("token_expired");
    expect(d.fix[0]).toMatch(/persist BOTH/);
  });

  it("reinstall: an old token answers invalid_auth → invalid, reinstalled", async () => {
    const t = install();
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: t.teamId });
    h.emu.control.reinstall({
      clientId: h.emu.demoApp.clientId,
      teamId: t.teamId,
      userId: t.userId,
      botScopes: ["chat:write"],
    });
    const d = await diagnoseWithoutSpending(t.bot);
    expectDiagnosis(d, "invalid", false, "reinstalled");
  });

  it("leak of a long-lived token → revoked; leaked_and_auto_revoked is named", async () => {
    const app = h.emu.control.createApp({ tokenRotation: false });
    const t = install({ clientId: app.clientId });
    expect(t.bot.startsWith("xoxb-")).toBe(true);
    h.emu.control.leakToken(t.bot);
    const d = await diagnoseWithoutSpending(t.bot);
    expect(d.verdict).toBe("revoked");
    expect(d.refreshable).toBe(false);
    expect(d.token).toEqual({ kind: "bot", rotating: false });
    const leak = d.causes.find((c) => c.code === "leaked_and_auto_revoked");
    expect(leak?.likelihood).toBe("medium");
  });

  it("deactivated user: the user token answers account_inactive → inactive, user_deactivated", async () => {
    const t = install({ userScopes: ["users:read"] });
    h.emu.control.deactivateUser(t.teamId, t.userId);
    const d = await diagnoseWithoutSpending(t.user ?? "");
    expectDiagnosis(d, "inactive", false, "user_deactivated");
    expect(d.token.kind).toBe("user");
  });

  it("missing scope: --scope users:read on a chat:write token → missing_scope", async () => {
    const t = install({ botScopes: ["chat:write"] });
    const d = await diagnoseWithoutSpending(t.bot, { requiredScopes: ["chat:write", "users:read"] });
    expectDiagnosis(d, "missing_scope", false, "missing_scope");
    expect(d.causes[0]?.explanation).toMatch(/lacks users:read/);
  });

  it("rate limit: 429 → rate_limited with Retry-After, no verdict on the token", async () => {
    const t = install();
    h.emu.control.fault("auth.test", { kind: "ratelimited", times: 1, retryAfterSeconds: 30 });
    const d = await diagnoseWithoutSpending(t.bot);
    expectDiagnosis(d, "rate_limited", true, "rate_limited");
    expect(d.fix[0]).toMatch(/Wait 30 s/);
  });

  it("emulator down: connection refused → unreachable", async () => {
    const { diagnosis } = await diagnoseToken({ token: "xoxb-1-2-abc", baseUrl: downUrl });
    expectDiagnosis(diagnosis, "unreachable", false, "provider_unreachable");
    expect(diagnosis.error).toBe("ECONNREFUSED");
  });

  it("a refresh token without --refresh is recognised and never spent", async () => {
    const t = install();
    const d = await diagnoseWithoutSpending(t.refresh);
    expectDiagnosis(d, "unchecked", true, null);
    expect(d.token).toEqual({ kind: "refresh", rotating: true });
    // Still works: nobody spent it.
    expect(h.emu.control.tokenInfo(t.refresh)).toMatchObject({ state: "active" });
  });

  it("stale refresh token reuse, with --refresh → invalid, refresh_token_reused; spent exactly once", async () => {
    const t = install();
    const res = await fetch(`${h.emu.url}/api/oauth.v2.access`, {
      method: "POST",
      body: new URLSearchParams({
        client_id: h.emu.demoApp.clientId,
        client_secret: h.emu.demoApp.clientSecret,
        grant_type: "refresh_token",
        refresh_token: t.refresh,
      }),
    });
    expect(((await res.json()) as { ok: boolean }).ok).toBe(true);
    h.emu.control.advance(600); // past the 120 s grace window
    const before = presentations();
    const { diagnosis, newTokens } = await diagnoseToken({
      token: t.refresh,
      baseUrl: h.emu.url,
      refreshWith: { clientId: h.emu.demoApp.clientId, clientSecret: h.emu.demoApp.clientSecret },
    });
    expect(presentations()).toBe(before + 1);
    expect(newTokens).toBeNull();
    expectDiagnosis(diagnosis, "invalid", false, "refresh_token_reused");
    expect(diagnosis.error).toBe("invalid_refresh_token");
  });

  it("--refresh with a good refresh token returns the new pair", async () => {
    const t = install();
    const { diagnosis, newTokens } = await diagnoseToken({
      token: t.refresh,
      baseUrl: h.emu.url,
      refreshWith: { clientId: h.emu.demoApp.clientId, clientSecret: h.emu.demoApp.clientSecret },
    });
    expectDiagnosis(diagnosis, "healthy", true, null);
    expect(newTokens?.accessToken.reveal()).toMatch(/^xoxe\.xoxb-/);
    expect(newTokens?.refreshToken?.reveal()).toMatch(/^xoxe-/);
  });

  it("wrong secret with --refresh → misconfigured, client_credentials_mismatch, and the token is not spent", async () => {
    const t = install();
    const before = presentations();
    const { diagnosis } = await diagnoseToken({
      token: t.refresh,
      baseUrl: h.emu.url,
      refreshWith: { clientId: h.emu.demoApp.clientId, clientSecret: "0".repeat(32) },
    });
    expect(presentations()).toBe(before);
    expectDiagnosis(diagnosis, "misconfigured", false, "client_credentials_mismatch");
    expect(h.emu.control.tokenInfo(t.refresh)).toMatchObject({ state: "active" });
  });
});

describe("diagnose token --refresh with a store", () => {
  const client = () => ({ clientId: h.emu.demoApp.clientId, clientSecret: h.emu.demoApp.clientSecret });

  it("a refresh token tokenwarden holds as dead is not sent to Slack, and the answer says so", async () => {
    const { id } = await h.installAndImport();
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: id });
    await h.warden.connections.check(id);
    const stored = await h.store.getCredential({ connectionId: id, kind: "bot" });
    expect(stored?.status).toBe("needs_reauth");
    const before = presentations();
    const r = await diagnoseToken({
      token: stored?.refreshToken?.reveal() ?? "",
      baseUrl: h.emu.url,
      refreshWith: client(),
      stored: { store: h.store, warden: h.warden },
    });
    expect(presentations()).toBe(before);
    expect(r.notSent).toMatch(/marked needs_reauth/);
    // Nothing came from Slack now: no error is presented as its answer.
    expect(r.diagnosis).toMatchObject({ verdict: "inactive", refreshable: false, error: null });
    expect(r.diagnosis.causes[0]?.explanation).toMatch(
      new RegExp(
        `connection ${id}, bot\\) marked dead: needs_reauth, reason \\w+ since \\d{4}-.*Nothing was sent to Slack now`,
      ),
    );
    expect(r.diagnosis.fix[0]).toContain(`/oauth/slack/install?connection_id=${id}`);
  });

  it("a previous refresh token (spent by tokenwarden, still in Slack's grace period) is not spent again", async () => {
    const { id, install: body } = await h.installAndImport();
    expect(await h.warden.connections.refresh(id)).toMatchObject([{ refreshed: true }]);
    const previous = body["refresh_token"] as string;
    const current = (await h.store.getCredential({ connectionId: id, kind: "bot" }))?.refreshToken?.reveal();
    const before = presentations();
    const attempt = diagnoseToken({
      token: previous,
      baseUrl: h.emu.url,
      refreshWith: client(),
      stored: { store: h.store, warden: h.warden },
    });
    await expect(attempt).rejects.toMatchObject({ code: "invalid_input" });
    await expect(attempt).rejects.toThrow(/not spent: .*Nothing was sent to Slack.*--spend-unknown$/);
    expect(presentations()).toBe(before);
    expect(h.emu.control.tokenInfo(current ?? "")).toMatchObject({ state: "active" });
    expectDiagnosis(await connectionDiagnosis(id), "healthy", true, null);
  });

  it("--spend-unknown spends a token the store does not hold, once", async () => {
    const t = install();
    const before = presentations();
    const r = await diagnoseToken({
      token: t.refresh,
      baseUrl: h.emu.url,
      refreshWith: client(),
      stored: { store: h.store, warden: h.warden },
      spendUnknown: true,
    });
    expect(presentations()).toBe(before + 1);
    expect(r.newTokens?.refreshToken?.reveal()).toMatch(/^xoxe-/);
  });
});

describe("diagnose app, against the emulator", () => {
  it("right credentials, rotation on → healthy, rotating", async () => {
    const before = presentations();
    const d = await diagnoseApp({ ...h.emu.demoApp, baseUrl: h.emu.url });
    expect(presentations()).toBe(before + 1); // the deliberately invalid probe token; no real one
    expectDiagnosis(d, "healthy", true, null);
    expect(d.token.rotating).toBe(true);
  });

  it("wrong secret → misconfigured, client_credentials_mismatch (bad_client_secret)", async () => {
    const d = await diagnoseApp({
      clientId: h.emu.demoApp.clientId,
      clientSecret: "0".repeat(32),
      baseUrl: h.emu.url,
    });
    expectDiagnosis(d, "misconfigured", false, "client_credentials_mismatch");
    expect(d.error).toBe("bad_client_secret");
  });

  it("unknown client id → misconfigured (invalid_client_id)", async () => {
    const d = await diagnoseApp({ clientId: "1.2", clientSecret: "x", baseUrl: h.emu.url });
    expect(d.error).toBe("invalid_client_id");
    expect(d.verdict).toBe("misconfigured");
  });

  it("rotation off → healthy credentials with rotation_not_enabled", async () => {
    const app = h.emu.control.createApp({ tokenRotation: false });
    const d = await diagnoseApp({ ...app, baseUrl: h.emu.url });
    expectDiagnosis(d, "healthy", false, "rotation_not_enabled");
  });

  it("emulator down → unreachable, refreshable unknown", async () => {
    const d = await diagnoseApp({ clientId: "1.2", clientSecret: "x", baseUrl: downUrl });
    expectDiagnosis(d, "unreachable", null, "provider_unreachable");
  });

  for (const [fault, verdict, leading] of [
    ["http_500", "unreachable", "provider_unreachable"],
    ["ratelimited", "rate_limited", "rate_limited"],
  ] as const) {
    it(`${fault} on the rotation probe → ${verdict}: rotation undetermined, not "not rotating"`, async () => {
      h.emu.control.fault("oauth.v2.exchange", { kind: fault, times: 1 });
      const d = await diagnoseApp({ ...h.emu.demoApp, baseUrl: h.emu.url });
      expectDiagnosis(d, verdict, null, leading);
      expect(d.causes[0]?.explanation).toMatch(/client id and secret are right.*could not be determined/);
      expect(d.causes.map((c) => c.code)).not.toContain("rotation_not_enabled");
    });
  }
});

describe("diagnose connection, from the stored timeline", () => {
  it("healthy after import", async () => {
    const { id } = await h.installAndImport();
    expectDiagnosis(await connectionDiagnosis(id), "healthy", true, null);
  });

  it("uninstall reported by Slack's app_uninstalled event → revoked, app_uninstalled", async () => {
    const { id } = await h.installAndImport();
    await h.warden.markNeedsReauth(id, "all", "app_uninstalled");
    expectDiagnosis(await connectionDiagnosis(id), "revoked", false, "app_uninstalled");
  });

  it("tokens_revoked event → admin_revoked", async () => {
    const { id } = await h.installAndImport();
    await h.warden.markNeedsReauth(id, ["bot"], "token_revoked");
    expectDiagnosis(await connectionDiagnosis(id), "revoked", false, "admin_revoked");
  });

  it("a long-lived token revoked quietly (no event) → leaked_and_auto_revoked leads", async () => {
    const app = h.emu.control.createApp({ tokenRotation: false });
    const t = install({ clientId: app.clientId });
    const id = `leak-${t.teamId}`;
    await h.warden.connections.import({
      id,
      provider: "slack",
      credentials: { bot: { accessToken: t.bot } },
    });
    h.emu.control.leakToken(t.bot);
    await h.warden.connections.check(id);
    const d = await connectionDiagnosis(id);
    expectDiagnosis(d, "revoked", false, "leaked_and_auto_revoked");
    expect(d.causes[0]?.likelihood).toBe("high");
  });

  it("another system spent the stored refresh token → invalid, refresh_token_reused", async () => {
    const { id, install: body } = await h.installAndImport();
    // The integration we migrated from still runs and refreshes with its copy.
    await spendElsewhere(body["refresh_token"] as string);
    advance(600);
    expect(await h.warden.connections.refresh(id)).toMatchObject([{ refreshed: false }]);
    expect((await h.warden.connections.get(id)).status).toBe("needs_reauth");
    const d = await connectionDiagnosis(id);
    expectDiagnosis(d, "invalid", false, "refresh_token_reused");
    expect(d.causes[0]?.explanation).toMatch(/already been spent elsewhere/);
  });

  it("an uninstall before a reconnect does not explain a refresh token spent elsewhere after it", async () => {
    const { id, install } = await h.installAndImport();
    const teamId = (install["team"] as { id: string }).id;
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId });
    await h.warden.markNeedsReauth(id, "all", "app_uninstalled");
    advance(3_600);
    const body = await reconnect(id, teamId);
    advance(3_600);
    await spendElsewhere(body["refresh_token"] as string);
    advance(600);
    expect(await h.warden.connections.refresh(id)).toMatchObject([
      { refreshed: false, error: "invalid_refresh_token" },
    ]);
    expect((await h.warden.connections.get(id)).reason).toBe("invalid_refresh_token");
    const d = await connectionDiagnosis(id);
    expectDiagnosis(d, "invalid", false, "refresh_token_reused");
    expect(d.causes[0]?.explanation).not.toMatch(/uninstalled/);
  });

  it("a revocation reported before a reconnect is not the cause of a quiet revocation after it", async () => {
    const { id, install } = await h.installAndImport();
    const teamId = (install["team"] as { id: string }).id;
    await h.warden.markNeedsReauth(id, ["bot"], "token_revoked");
    const reported = (await h.warden.connections.events(id)).find((e) => e.type === "revoked");
    expect(reported).toBeDefined();
    advance(86_400);
    const body = await reconnect(id, teamId);
    advance(3_600);
    // Slack's leak scanner revokes the new token, with no tokens_revoked event.
    h.emu.control.leakToken(body["access_token"] as string);
    await h.warden.connections.check(id);
    const d = await connectionDiagnosis(id);
    expect(d.verdict).toBe("revoked");
    expect(d.causes[0]?.explanation).not.toContain(iso(reported?.atMs ?? 0));
    expect(d.causes[0]?.explanation).not.toMatch(/Slack reported the revocation itself/);
  });

  it("of several revocations reported since the reconnect, the latest is named", async () => {
    const { id } = await h.installAndImport();
    await h.warden.markNeedsReauth(id, ["bot"], "token_revoked");
    advance(3_600);
    await h.warden.markNeedsReauth(id, ["bot"], "token_revoked");
    const reports = (await h.warden.connections.events(id)).filter((e) => e.type === "revoked");
    const latest = Math.max(...reports.map((e) => e.atMs));
    const d = await connectionDiagnosis(id);
    expectDiagnosis(d, "revoked", false, "admin_revoked");
    expect(d.causes[0]?.explanation).toContain(iso(latest));
  });

  it("lost refresh response, then refused after the grace window → refresh_response_lost", async () => {
    const { id } = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "lost_response", times: 1 });
    const first = await h.warden.connections.refresh(id);
    expect(first[0]?.refreshed).toBe(false);
    h.emu.control.advance(600);
    h.clock.advance(600_000);
    expect(await h.warden.connections.refresh(id)).toMatchObject([{ refreshed: false }]);
    expect((await h.warden.connections.get(id)).reason).toBe("refresh_response_lost");
    const r = await diagnoseConnection({
      id,
      store: h.store,
      warden: h.warden,
      baseUrl: h.emu.url,
      nowMs: h.clock.now(),
    });
    expectDiagnosis(r.diagnosis, "invalid", false, "refresh_response_lost");
    expect(r.diagnosis.causes[0]?.explanation).toMatch(/reply never arrived.*tried once more/s);
    expect(r.timeline.map((t) => t.text).join("\n")).toMatch(/refresh failed: .*retry at/);
  });

  it("a refresh whose holder died: in flight while its claim holds, then refresh_response_lost", async () => {
    const { id } = await h.installAndImport();
    // A process claims the refresh (the journal opens), sends it, and dies before recording anything.
    const claim = await h.store.claimRefresh(
      { connectionId: id, kind: "bot" },
      { owner: "gone", nowMs: h.clock.now(), leaseMs: 30_000, freshUntilMs: Number.MAX_SAFE_INTEGER },
    );
    expect(claim.kind).toBe("claimed");
    const inFlight = await connectionDiagnosis(id);
    expectDiagnosis(inFlight, "healthy", true, null);

    advance(31);
    const d = await connectionDiagnosis(id);
    expectDiagnosis(d, "healthy", true, "refresh_response_lost");
    expect(d.causes[0]?.likelihood).toBe("medium");
    expect(d.fix[0]).toMatch(
      new RegExp(`within Slack's grace window.*tokenwarden connections refresh ${id}`),
    );
  });

  it("a user deactivated (check) → inactive, user_deactivated", async () => {
    const { id } = await h.installAndImport({ withUser: true });
    const conn = await h.warden.connections.get(id);
    const userId = conn.credentials.find((c) => c.kind === "user")?.providerData["user_id"];
    // installAndImport does not record user_id; find the user from the emulator's token info instead.
    const creds = await h.store.listCredentials(id);
    const userToken = creds.find((c) => c.kind === "user")?.accessToken.reveal() ?? "";
    const info = h.emu.control.tokenInfo(userToken) as { teamId: string; userId: string };
    h.emu.control.deactivateUser(info.teamId, typeof userId === "string" ? userId : info.userId);
    await h.warden.connections.check(id);
    const d = await connectionDiagnosis(id);
    expectDiagnosis(d, "inactive", false, "user_deactivated");
    expect(d.token.kind).toBe("user");
    // The bot still works: the user token can be signed out instead of reconnected, and the check
    // names the user token's variable.
    expect(d.fix.join("\n")).toContain(`tokenwarden connections delete ${id} --kind user --yes`);
    expect(d.fix.at(-1)).toContain("--token-env SLACK_USER_TOKEN");
  });

  it("a dead bot's fix has no sign-out step, and verifies the bot token", async () => {
    const { id } = await h.installAndImport({ withUser: true });
    const creds = await h.store.listCredentials(id);
    const bot = creds.find((c) => c.kind === "bot")?.accessToken.reveal() ?? "";
    const info = h.emu.control.tokenInfo(bot) as { teamId: string };
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: info.teamId });
    await h.warden.connections.check(id);
    const d = await connectionDiagnosis(id);
    expect(d.fix.join("\n")).not.toContain("--kind user");
    expect(d.fix.at(-1)).toContain("--token-env SLACK_BOT_TOKEN");
  });

  it("wrong client secret flags the provider → misconfigured where it is configured, a low cause elsewhere", async () => {
    const { id } = await h.installAndImport();
    const oldSecret = "0".repeat(32);
    const bad = await h.peer({
      providers: { slack: { clientId: h.emu.demoApp.clientId, clientSecret: oldSecret, baseUrl: h.emu.url } },
    });
    // The token is still valid, so the refused refresh reports its error rather than throwing.
    expect(await bad.connections.refresh(id)).toMatchObject([
      { refreshed: false, error: "bad_client_secret" },
    ]);
    // Run with the credentials that work: the connection is fine, and the flag is named as another
    // process's problem.
    const ours = await connectionDiagnosis(id);
    expect(ours.verdict).not.toBe("misconfigured");
    const named = ours.causes.find((c) => c.code === "client_credentials_mismatch");
    expect(named).toMatchObject({ likelihood: "low" });
    // It says when such a flag goes: STALE_FLAG_MS after its last report.
    expect(named?.explanation ?? "").toContain(`lifted ${STALE_FLAG_MS / 60_000} minutes after`);
    expect(JSON.stringify(ours)).not.toContain(oldSecret);
    // Run with the refused ones: that is this deployment's problem.
    expectDiagnosis(
      await connectionDiagnosis(id, bad),
      "misconfigured",
      false,
      "client_credentials_mismatch",
    );
    await setSlackState(h, "ok");
  });

  it("a dead connection while the provider is flagged is explained as dead, not misconfigured", async () => {
    const { id } = await h.installAndImport();
    await h.warden.markNeedsReauth(id, "all", "app_uninstalled");
    await setSlackState(h, "misconfigured");
    try {
      const d = await connectionDiagnosis(id);
      expectDiagnosis(d, "revoked", false, "app_uninstalled");
      // The flag is still named, after the death, because a reconnect needs the right credentials.
      expect(d.causes.at(-1)).toMatchObject({ code: "client_credentials_mismatch", likelihood: "low" });
      expect(d.fix.join("\n")).toMatch(/Reinstall the app or re-run OAuth/);
    } finally {
      await setSlackState(h, "ok");
    }
  });
});
