// A plain install (no connection_id) of a workspace is routed to the one connection stored under an id
// of the app's own that holds it: only when that connection is this installation's own.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  botFromInstall,
  installViaBrowser,
  openServerHarness,
  type ServerHarness,
} from "./server-harness.js";

type Json = Record<string, unknown>;

describe("a plain install routed to a connection of the app's own", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    // A user-token-only app: each member's install is that member's token.
    h = await openServerHarness("sqlite", {
      env: { TOKENWARDEN_SLACK_SCOPES: "", TOKENWARDEN_SLACK_USER_SCOPES: "users:read" },
    });
    h.emu.control.setAuthorize({ mode: "approve" });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("never hands one member's connection another member's user token", async () => {
    const { clientId } = h.emu.demoApp;
    const team = h.emu.control.createTeam({ name: "members" });
    const alice = h.emu.control.createUser(team.teamId).userId;
    const bob = h.emu.control.createUser(team.teamId).userId;
    const install = h.emu.control.install({
      clientId,
      teamId: team.teamId,
      userId: alice,
      userScopes: ["users:read"],
    });
    const user = install.authed_user as { access_token: string; refresh_token: string };
    await h.server.warden.connections.import({
      id: "alice-at-members",
      provider: "slack",
      credentials: {
        user: { accessToken: user.access_token, refreshToken: user.refresh_token, expiresIn: 43_200 },
      },
      metadata: { team_id: team.teamId, authed_user_id: alice },
    });
    h.emu.control.setAuthorize({ teamId: team.teamId, userId: bob });
    try {
      const back = await installViaBrowser(h, `${h.server.publicUrl}/oauth/slack/install`);
      expect(back.status).toBe(303);
      expect(back.headers.get("location")).not.toContain("alice-at-members");
    } finally {
      h.emu.control.setAuthorize({ teamId: null, userId: null });
    }
    const held = await h.server.warden.getToken("alice-at-members", { kind: "user" });
    expect(held.accessToken).toBe(user.access_token);
    const shown = (await (await h.api("/v1/connections/alice-at-members")).json()) as Json;
    expect(shown["metadata"]).toMatchObject({ authed_user_id: alice });
  });

  it("a member's own plain reinstall reconnects that member's connection", async () => {
    const { clientId } = h.emu.demoApp;
    const team = h.emu.control.createTeam({ name: "member-back" });
    const carol = h.emu.control.createUser(team.teamId).userId;
    const install = h.emu.control.install({
      clientId,
      teamId: team.teamId,
      userId: carol,
      userScopes: ["users:read"],
    });
    const user = install.authed_user as { access_token: string; refresh_token: string };
    await h.server.warden.connections.import({
      id: "carol-at-member-back",
      provider: "slack",
      credentials: {
        user: { accessToken: user.access_token, refreshToken: user.refresh_token, expiresIn: 43_200 },
      },
      metadata: { team_id: team.teamId, authed_user_id: carol, app_id: h.emu.demoApp.appId },
    });
    h.emu.control.setAuthorize({ teamId: team.teamId, userId: carol });
    try {
      const back = await installViaBrowser(h, `${h.server.publicUrl}/oauth/slack/install`);
      expect(back.headers.get("location")).toContain("connection_id=carol-at-member-back");
    } finally {
      h.emu.control.setAuthorize({ teamId: null, userId: null });
    }
    expect((await h.api(`/v1/connections/${team.teamId}`)).status).toBe(404);
  });

  it("never hands a connection of another Slack app this app's tokens", async () => {
    const other = h.emu.control.createApp({});
    const team = h.emu.control.createTeam({ name: "two-apps" });
    const install = h.emu.control.install({
      clientId: other.clientId,
      teamId: team.teamId,
      userScopes: ["users:read"],
    });
    const user = install.authed_user as { access_token: string; refresh_token: string };
    await h.server.warden.connections.import({
      id: "other-app-at-two-apps",
      provider: "slack",
      credentials: {
        user: { accessToken: user.access_token, refreshToken: user.refresh_token, expiresIn: 43_200 },
      },
      metadata: { team_id: team.teamId, app_id: other.appId, authed_user_id: install.authed_user?.id },
    });
    h.emu.control.setAuthorize({ teamId: team.teamId });
    try {
      const back = await installViaBrowser(h, `${h.server.publicUrl}/oauth/slack/install`);
      expect(back.status).toBe(303);
      expect(back.headers.get("location")).toContain(`connection_id=${team.teamId}`);
    } finally {
      h.emu.control.setAuthorize({ teamId: null });
    }
    const held = await h.server.warden.getToken("other-app-at-two-apps", { kind: "user" });
    expect(held.accessToken).toBe(user.access_token);
  });
});

describe("a plain install of an app with a bot and user scopes", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: { TOKENWARDEN_SLACK_USER_SCOPES: "users:read" } });
    h.emu.control.setAuthorize({ mode: "approve" });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("reconnects the workspace's connection for its installer, never for another member", async () => {
    const { clientId, appId } = h.emu.demoApp;
    const team = h.emu.control.createTeam({ name: "bot-and-user" });
    const alice = h.emu.control.createUser(team.teamId).userId;
    const bob = h.emu.control.createUser(team.teamId).userId;
    const install = h.emu.control.install({
      clientId,
      teamId: team.teamId,
      userId: alice,
      botScopes: ["chat:write"],
      userScopes: ["users:read"],
    });
    const user = install.authed_user as { access_token: string; refresh_token: string };
    await h.server.warden.connections.import({
      id: "acme",
      provider: "slack",
      credentials: {
        bot: botFromInstall(install),
        user: { accessToken: user.access_token, refreshToken: user.refresh_token, expiresIn: 43_200 },
      },
      metadata: { team_id: team.teamId, authed_user_id: alice, app_id: appId },
    });
    const plainInstallBy = async (userId: string) => {
      h.emu.control.setAuthorize({ teamId: team.teamId, userId });
      try {
        return (await installViaBrowser(h, `${h.server.publicUrl}/oauth/slack/install`)).headers.get(
          "location",
        );
      } finally {
        h.emu.control.setAuthorize({ teamId: null, userId: null });
      }
    };
    // Alice reinstalling is acme's own reconnect.
    expect(await plainInstallBy(alice)).toContain("connection_id=acme");
    const alices = (await h.server.warden.getToken("acme", { kind: "user" })).accessToken;
    expect(alices).not.toBe(user.access_token);
    // Bob's install carries Bob's user token: in acme it would stand in for Alice's.
    expect(await plainInstallBy(bob)).toContain(`connection_id=${team.teamId}`);
    expect((await h.server.warden.getToken("acme", { kind: "user" })).accessToken).toBe(alices);
  });
});
