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

/** Installs `clientId` into `teamId` as `userId` (with a bot when `botScopes` is given) and imports it as `id`. */
async function importMember(
  h: ServerHarness,
  o: { id: string; teamId: string; userId?: string; clientId?: string; botScopes?: string[]; metadata: Json },
): Promise<string> {
  const install = h.emu.control.install({
    clientId: o.clientId ?? h.emu.demoApp.clientId,
    teamId: o.teamId,
    ...(o.userId === undefined ? {} : { userId: o.userId }),
    ...(o.botScopes === undefined ? {} : { botScopes: o.botScopes }),
    userScopes: ["users:read"],
  });
  const user = install.authed_user as { id: string; access_token: string; refresh_token: string };
  await h.server.warden.connections.import({
    id: o.id,
    provider: "slack",
    credentials: {
      ...(o.botScopes === undefined ? {} : { bot: botFromInstall(install) }),
      user: { accessToken: user.access_token, refreshToken: user.refresh_token, expiresIn: 43_200 },
    },
    metadata: { team_id: o.teamId, authed_user_id: user.id, ...o.metadata },
  });
  return user.access_token;
}

/** A plain install into `teamId` by `userId` (the emulator's first member without one); where it lands. */
async function plainInstall(h: ServerHarness, teamId: string, userId?: string): Promise<string> {
  h.emu.control.setAuthorize({ teamId, ...(userId === undefined ? {} : { userId }) });
  try {
    const back = await installViaBrowser(h, `${h.server.publicUrl}/oauth/slack/install`);
    expect(back.status).toBe(303);
    return back.headers.get("location") ?? "";
  } finally {
    h.emu.control.setAuthorize({ teamId: null, userId: null });
  }
}

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
    const team = h.emu.control.createTeam({ name: "members" });
    const alice = h.emu.control.createUser(team.teamId).userId;
    const bob = h.emu.control.createUser(team.teamId).userId;
    const token = await importMember(h, {
      id: "alice-at-members",
      teamId: team.teamId,
      userId: alice,
      metadata: {},
    });
    expect(await plainInstall(h, team.teamId, bob)).not.toContain("alice-at-members");
    expect((await h.server.warden.getToken("alice-at-members", { kind: "user" })).accessToken).toBe(token);
    const shown = (await (await h.api("/v1/connections/alice-at-members")).json()) as Json;
    expect(shown["metadata"]).toMatchObject({ authed_user_id: alice });
  });

  it("a member's own plain reinstall reconnects that member's connection", async () => {
    const team = h.emu.control.createTeam({ name: "member-back" });
    const carol = h.emu.control.createUser(team.teamId).userId;
    await importMember(h, {
      id: "carol-at-member-back",
      teamId: team.teamId,
      userId: carol,
      metadata: { app_id: h.emu.demoApp.appId },
    });
    expect(await plainInstall(h, team.teamId, carol)).toContain("connection_id=carol-at-member-back");
    expect((await h.api(`/v1/connections/${team.teamId}`)).status).toBe(404);
  });

  // One connection per member: the workspace holds several, each its own member's, and whichever one
  // is stored under the workspace's own id, each member's install finds that member's connection.
  it("reconnects the installing member's own connection among several members'", async () => {
    const team = h.emu.control.createTeam({ name: "several members" });
    const alice = h.emu.control.createUser(team.teamId).userId;
    const bob = h.emu.control.createUser(team.teamId).userId;
    const carol = h.emu.control.createUser(team.teamId).userId;
    await importMember(h, { id: "alice-of-several", teamId: team.teamId, userId: alice, metadata: {} });
    await importMember(h, { id: "bob-of-several", teamId: team.teamId, userId: bob, metadata: {} });
    expect(await plainInstall(h, team.teamId, alice)).toContain("connection_id=alice-of-several");
    expect((await h.api(`/v1/connections/${team.teamId}`)).status).toBe(404);
    // Carol has none: hers is the workspace's id; Bob's own install still finds his.
    expect(await plainInstall(h, team.teamId, carol)).toContain(`connection_id=${team.teamId}`);
    const carols = (await h.server.warden.getToken(team.teamId, { kind: "user" })).accessToken;
    expect(await plainInstall(h, team.teamId, bob)).toContain("connection_id=bob-of-several");
    expect(await plainInstall(h, team.teamId, alice)).toContain("connection_id=alice-of-several");
    expect((await h.server.warden.getToken(team.teamId, { kind: "user" })).accessToken).toBe(carols);
    expect((await h.server.warden.connections.get("bob-of-several")).metadata).toMatchObject({
      authed_user_id: bob,
    });
  });

  it("never hands a connection of another Slack app this app's tokens", async () => {
    const other = h.emu.control.createApp({});
    const team = h.emu.control.createTeam({ name: "two-apps" });
    const token = await importMember(h, {
      id: "other-app-at-two-apps",
      teamId: team.teamId,
      clientId: other.clientId,
      metadata: { app_id: other.appId },
    });
    expect(await plainInstall(h, team.teamId)).toContain(`connection_id=${team.teamId}`);
    expect((await h.server.warden.getToken("other-app-at-two-apps", { kind: "user" })).accessToken).toBe(
      token,
    );
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
    const team = h.emu.control.createTeam({ name: "bot-and-user" });
    const alice = h.emu.control.createUser(team.teamId).userId;
    const bob = h.emu.control.createUser(team.teamId).userId;
    const first = await importMember(h, {
      id: "acme",
      teamId: team.teamId,
      userId: alice,
      botScopes: ["chat:write"],
      metadata: { app_id: h.emu.demoApp.appId },
    });
    // Alice reinstalling is acme's own reconnect.
    expect(await plainInstall(h, team.teamId, alice)).toContain("connection_id=acme");
    const alices = (await h.server.warden.getToken("acme", { kind: "user" })).accessToken;
    expect(alices).not.toBe(first);
    // Bob's install carries Bob's user token: in acme it would stand in for Alice's.
    expect(await plainInstall(h, team.teamId, bob)).toContain(`connection_id=${team.teamId}`);
    expect((await h.server.warden.getToken("acme", { kind: "user" })).accessToken).toBe(alices);
  });
});
