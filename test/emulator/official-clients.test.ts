// The emulator against clients nobody here wrote: @slack/web-api's WebClient and @slack/oauth's
// InstallProvider (signature checks by @slack/bolt are in events.test.ts).
import type { Installation, InstallationQuery } from "@slack/oauth";
import { InstallProvider } from "@slack/oauth";
import { ErrorCode, WebClient } from "@slack/web-api";
import { afterEach, describe, expect, it, vi } from "vitest";
import { handleCallback } from "../helpers/bolt-installation.js";
import { emulator, str } from "./emulator-harness.js";

function client(emu: { url: string }, token?: string): WebClient {
  return new WebClient(token, {
    slackApiUrl: `${emu.url}/api/`,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
  });
}

describe("@slack/web-api WebClient", () => {
  it("calls auth.test and chat.postMessage and sees x-oauth-scopes as response_metadata.scopes", async () => {
    const emu = await emulator();
    const bot = str(
      emu.control.install({ clientId: emu.demoApp.clientId, botScopes: ["chat:write", "channels:read"] }),
      "access_token",
    );
    const web = client(emu, bot);
    const test = await web.auth.test();
    expect(test).toMatchObject({ ok: true, team_id: emu.demoTeam.teamId });
    expect(test.response_metadata?.scopes).toEqual(["chat:write", "channels:read"]);
    const channels = await web.conversations.list();
    const posted = await web.chat.postMessage({ channel: channels.channels?.[0]?.id ?? "", text: "hello" });
    expect(posted).toMatchObject({ ok: true, message: { text: "hello" } });
  });

  it("runs both oauth.v2.access grants", async () => {
    const emu = await emulator({ autoApprove: true });
    const authorize = await fetch(
      `${emu.url}/oauth/v2/authorize?client_id=${emu.demoApp.clientId}&scope=chat:write&user_scope=search:read`,
      { redirect: "manual" },
    );
    const code = new URL(authorize.headers.get("location") ?? "").searchParams.get("code") ?? "";
    const web = client(emu);
    const install = await web.oauth.v2.access({
      client_id: emu.demoApp.clientId,
      client_secret: emu.demoApp.clientSecret,
      code,
    });
    expect(install).toMatchObject({
      ok: true,
      token_type: "bot",
      expires_in: 43200,
      authed_user: { token_type: "user" },
    });
    const refreshed = await web.oauth.v2.access({
      client_id: emu.demoApp.clientId,
      client_secret: emu.demoApp.clientSecret,
      grant_type: "refresh_token",
      refresh_token: install.refresh_token ?? "",
    });
    expect(refreshed).toMatchObject({ ok: true, token_type: "bot", expires_in: 43200 });
    expect(refreshed.access_token).not.toBe(install.access_token);
  });

  it("surfaces Slack platform errors, HTTP errors and rate limits the way the SDK classifies them", async () => {
    const emu = await emulator();
    const bot = str(emu.control.install({ clientId: emu.demoApp.clientId }), "access_token");
    const web = client(emu, bot);
    emu.control.advance(43_200);
    await expect(web.auth.test()).rejects.toMatchObject({
      code: ErrorCode.PlatformError,
      data: { ok: false, error: "token_expired" },
    });
    await expect(
      client(emu).oauth.v2.access({
        client_id: emu.demoApp.clientId,
        client_secret: emu.demoApp.clientSecret,
        grant_type: "refresh_token",
        refresh_token: "xoxe-1-nope",
      }),
    ).rejects.toMatchObject({ code: ErrorCode.PlatformError, data: { error: "invalid_refresh_token" } });
    emu.control.fault("auth.test", { kind: "http_500", times: 1 });
    await expect(web.auth.test()).rejects.toMatchObject({ code: ErrorCode.HTTPError, statusCode: 500 });
    emu.control.fault("auth.test", { kind: "ratelimited", times: 1, retryAfterSeconds: 3 });
    await expect(web.auth.test()).rejects.toMatchObject({ code: ErrorCode.RateLimitedError, retryAfter: 3 });
  });
});

describe("@slack/oauth InstallProvider", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("installs through the emulator, then authorize() rotates both tokens once < 2 h remain", async () => {
    // The SDK reads Date.now(); the emulator shares that clock, so moving it moves both.
    vi.useFakeTimers({ toFake: ["Date"] });
    const emu = await emulator({ autoApprove: true, now: () => Date.now() });
    const stored = new Map<string, Installation>();
    const keyOf = (q: InstallationQuery<boolean>) => q.enterpriseId ?? q.teamId ?? "";
    const installer = new InstallProvider({
      clientId: emu.demoApp.clientId,
      clientSecret: emu.demoApp.clientSecret,
      stateVerification: false,
      authorizationUrl: `${emu.url}/oauth/v2/authorize`,
      clientOptions: { slackApiUrl: `${emu.url}/api/` },
      installationStore: {
        storeInstallation: async (i) => {
          stored.set(
            i.isEnterpriseInstall ? (i.enterprise?.id ?? "") : (i.team?.id ?? ""),
            i as Installation,
          );
        },
        fetchInstallation: async (q) => {
          const i = stored.get(keyOf(q));
          if (i === undefined) throw new Error("not installed");
          return i as Installation<"v2", boolean>;
        },
        deleteInstallation: async (q) => {
          stored.delete(keyOf(q));
        },
      },
    });
    const url = await installer.generateInstallUrl(
      { scopes: ["chat:write"], userScopes: ["search:read"] },
      false,
    );
    expect(url.startsWith(`${emu.url}/oauth/v2/authorize?`)).toBe(true);
    const redirect = await fetch(url, { redirect: "manual" });
    const callback = new URL(redirect.headers.get("location") ?? "");
    expect(callback.searchParams.has("code")).toBe(true);

    expect(await handleCallback(installer, callback)).toEqual([]);
    const installation = stored.get(emu.demoTeam.teamId);
    expect(installation?.bot?.id).toMatch(/^B/); // from auth.test with the new bot token
    expect(installation?.bot?.refreshToken).toMatch(/^xoxe-1-/);
    expect(installation?.user.refreshToken).toMatch(/^xoxe-1-/);
    const firstBot = installation?.bot?.token ?? "";
    const firstBotRefresh = installation?.bot?.refreshToken ?? "";

    // 12 h tokens with 11 h left: authorize() leaves them alone.
    vi.setSystemTime(Date.now() + 3600_000);
    const early = await installer.authorize({
      teamId: emu.demoTeam.teamId,
      enterpriseId: undefined,
      isEnterpriseInstall: false,
    });
    expect(early.botToken).toBe(firstBot);
    expect(emu.control.counters().refreshes).toBe(0);

    // 1 h 30 min left: inside the SDK's 2 h window, both tokens rotate through the emulator.
    vi.setSystemTime(Date.now() + 9.5 * 3600_000);
    const later = await installer.authorize({
      teamId: emu.demoTeam.teamId,
      enterpriseId: undefined,
      isEnterpriseInstall: false,
    });
    expect(later.botToken).toMatch(/^xoxe\.xoxb-1-/);
    expect(later.botToken).not.toBe(firstBot);
    expect(later.userToken).toMatch(/^xoxe\.xoxp-1-/);
    expect(emu.control.counters()).toMatchObject({ refreshes: 2, maxPresentations: 1 });
    expect(emu.control.tokenInfo(firstBotRefresh).state).toBe("in_grace");
    expect(stored.get(emu.demoTeam.teamId)?.bot?.token).toBe(later.botToken);
    expect((await client(emu, later.botToken).auth.test()).ok).toBe(true);
  });
});
