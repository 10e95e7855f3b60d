// Review finding: a Slack retry of an app_uninstalled / tokens_revoked that happened BEFORE a
// reconnect kills the fresh credentials the reconnect just stored. The server deliberately answers
// 5xx when acting on an event fails (so that Slack retries, README "Slack events"), and Slack retries
// after 1 min and 5 min (hourly for 24 h with Delayed Events, slack-api.md §6.6). The event's
// `event_time` says when it happened; it is never compared with when the credential was issued.
// Dead connections are not health-checked, so nothing revives it: the token route answers 409 for a
// connection whose tokens work, until a person reconnects a second time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import { signSlackRequest } from "../../src/providers/slack/slack-signature.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { installViaBrowser, openServerHarness, type ServerHarness } from "./server-harness.js";

describe.each(STORE_KINDS)("late Slack event after a reconnect (%s)", (kind) => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness(kind);
  });
  afterAll(async () => {
    await h?.close();
  });

  const deliver = (body: string, retry?: number) => {
    const ts = Math.floor(h.clock.now() / 1000);
    return h.server.app.inject({
      method: "POST",
      url: "/slack/events",
      headers: {
        "content-type": "application/json",
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": signSlackRequest(h.emu.demoApp.signingSecret, ts, body),
        ...(retry === undefined
          ? {}
          : { "x-slack-retry-num": String(retry), "x-slack-retry-reason": "http_error" }),
      },
      payload: body,
    });
  };

  it("a retried app_uninstalled from before a reconnect leaves the reconnected connection active", async () => {
    const { clientId } = h.emu.demoApp;
    const teamId = await h.installAndImport(`late-${kind}`);
    // The app is uninstalled in Slack; Slack sends app_uninstalled (event_time = now).
    h.emu.control.uninstall({ clientId, teamId });
    const body = JSON.stringify({
      type: "event_callback",
      team_id: teamId,
      api_app_id: h.emu.demoApp.appId,
      event_id: `EvLate${kind}`,
      event_time: Math.floor(h.clock.now() / 1000),
      event: { type: "app_uninstalled" },
      authorizations: [{ team_id: teamId, is_enterprise_install: false }],
    });
    // The first delivery fails on our side (the store blips): 5xx, so Slack will retry (by design).
    const connections = h.server.warden.connections;
    const get = connections.get;
    connections.get = async () => {
      connections.get = get;
      throw new TokenwardenError("store_unavailable", "the store is down");
    };
    expect((await deliver(body)).statusCode).toBe(503);
    connections.get = get;

    // Two minutes later the admin reinstalls through the connection's reconnect link.
    h.clock.advance(120_000);
    h.emu.control.setAuthorize({ mode: "approve", teamId });
    const back = await installViaBrowser(
      h,
      `${h.server.publicUrl}/oauth/slack/install?connection_id=${encodeURIComponent(teamId)}`,
    );
    expect(back.status).toBe(303);
    expect((await h.server.warden.connections.get(teamId)).status).toBe("active");

    // Slack's second retry (5 minutes after the first attempt) of the OLD uninstall arrives.
    h.clock.advance(180_000);
    expect((await deliver(body, 2)).statusCode).toBe(200);

    // The new tokens work at Slack...
    const token = await h.api(`/v1/connections/${teamId}/token`);
    const proxied = await h.api(`/v1/proxy/${teamId}/auth.test`, { method: "POST" });
    // ...so the connection must still be active and usable.
    expect((await h.server.warden.connections.get(teamId)).status).toBe("active");
    expect(token.status).toBe(200);
    expect(proxied.status).toBe(200);
  });

  it("a tokens_revoked for the old bot token, delivered after the reinstall, leaves the new bot token alive", async () => {
    const { clientId } = h.emu.demoApp;
    const team = h.emu.control.createTeam({ name: `late-revoked-${kind}` });
    const first = h.emu.control.install({ clientId, teamId: team.teamId });
    await h.server.warden.connections.import({
      id: team.teamId,
      provider: "slack",
      credentials: {
        bot: {
          accessToken: first.access_token ?? "",
          refreshToken: first.refresh_token ?? null,
          expiresIn: 43_200,
          providerData: { bot_user_id: first.bot_user_id },
        },
      },
      metadata: { team_id: team.teamId },
    });
    // The admin removes the app and adds it again at once (to change scopes, say). Slack queues
    // tokens_revoked for the OLD bot token (event_time = the uninstall)...
    h.emu.control.uninstall({ clientId, teamId: team.teamId });
    const revoked = JSON.stringify({
      type: "event_callback",
      team_id: team.teamId,
      event_id: `EvLateRevoked${kind}`,
      event_time: Math.floor(h.clock.now() / 1000),
      event: { type: "tokens_revoked", tokens: { bot: [first.bot_user_id] } },
      authorizations: [{ team_id: team.teamId, is_enterprise_install: false }],
    });
    // ...and the reinstall completes through tokenwarden before that delivery arrives.
    h.clock.advance(30_000);
    const admin = h.emu.control.createUser(team.teamId, { name: "admin" });
    h.emu.control.setAuthorize({ mode: "approve", teamId: team.teamId, userId: admin.userId });
    const back = await installViaBrowser(
      h,
      `${h.server.publicUrl}/oauth/slack/install?connection_id=${encodeURIComponent(team.teamId)}`,
    );
    expect(back.status).toBe(303);
    const reinstalled = await h.server.warden.connections.get(team.teamId);
    expect(reinstalled.status).toBe("active");
    // The same app in the same workspace: the same bot user.
    expect(reinstalled.credentials[0]?.providerData["bot_user_id"]).toBe(first.bot_user_id);

    h.clock.advance(5_000);
    expect((await deliver(revoked)).statusCode).toBe(200);
    expect((await h.server.warden.connections.get(team.teamId)).status).toBe("active");
    expect((await h.api(`/v1/proxy/${team.teamId}/auth.test`, { method: "POST" })).status).toBe(200);
  });
});
