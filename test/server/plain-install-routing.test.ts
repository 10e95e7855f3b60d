// A plain install (no connection_id) of a workspace is routed to the one connection stored under an id
// of the app's own that holds it: only when that connection is this installation's own.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  importMember,
  installLink,
  installViaBrowser,
  metadataOf,
  openServerHarness,
  type ServerHarness,
  userToken,
  workspaceWith,
} from "./server-harness.js";

type Json = Record<string, unknown>;

/** A plain install into `teamId` by `userId` (the emulator's first member without one); where it lands. */
async function plainInstall(h: ServerHarness, teamId: string, userId?: string): Promise<string> {
  h.emu.control.setAuthorize({ teamId, ...(userId === undefined ? {} : { userId }) });
  try {
    const back = await installViaBrowser(h, installLink(h));
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
    const { teamId, alice, bob } = workspaceWith(h, "members", "alice", "bob");
    const token = await importMember(h, { id: "alice-at-members", teamId, userId: alice });
    expect(await plainInstall(h, teamId, bob)).not.toContain("alice-at-members");
    expect(await userToken(h, "alice-at-members")).toBe(token);
    const shown = (await (await h.api("/v1/connections/alice-at-members")).json()) as Json;
    expect(shown["metadata"]).toMatchObject({ authed_user_id: alice });
  });

  it("a member's own plain reinstall reconnects that member's connection", async () => {
    const { teamId, carol } = workspaceWith(h, "member-back", "carol");
    await importMember(h, {
      id: "carol-at-member-back",
      teamId,
      userId: carol,
      metadata: { app_id: h.emu.demoApp.appId },
    });
    expect(await plainInstall(h, teamId, carol)).toContain("connection_id=carol-at-member-back");
    expect((await h.api(`/v1/connections/${teamId}`)).status).toBe(404);
  });

  // One connection per member: the workspace holds several, each its own member's, and whichever one
  // is stored under the workspace's own id, each member's install finds that member's connection.
  it("reconnects the installing member's own connection among several members'", async () => {
    const { teamId, alice, bob, carol } = workspaceWith(h, "several members", "alice", "bob", "carol");
    await importMember(h, { id: "alice-of-several", teamId, userId: alice });
    await importMember(h, { id: "bob-of-several", teamId, userId: bob });
    expect(await plainInstall(h, teamId, alice)).toContain("connection_id=alice-of-several");
    expect((await h.api(`/v1/connections/${teamId}`)).status).toBe(404);
    // Carol has none: hers is the workspace's id; Bob's own install still finds his.
    expect(await plainInstall(h, teamId, carol)).toContain(`connection_id=${teamId}`);
    const carols = await userToken(h, teamId);
    expect(await plainInstall(h, teamId, bob)).toContain("connection_id=bob-of-several");
    expect(await plainInstall(h, teamId, alice)).toContain("connection_id=alice-of-several");
    expect(await userToken(h, teamId)).toBe(carols);
    expect(await metadataOf(h, "bob-of-several")).toMatchObject({ authed_user_id: bob });
  });

  it("never hands a connection of another Slack app this app's tokens", async () => {
    const other = h.emu.control.createApp({});
    const { teamId } = workspaceWith(h, "two-apps");
    const token = await importMember(h, {
      id: "other-app-at-two-apps",
      teamId,
      clientId: other.clientId,
      metadata: { app_id: other.appId },
    });
    expect(await plainInstall(h, teamId)).toContain(`connection_id=${teamId}`);
    expect(await userToken(h, "other-app-at-two-apps")).toBe(token);
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
    const { teamId, alice, bob } = workspaceWith(h, "bot-and-user", "alice", "bob");
    const first = await importMember(h, {
      id: "acme",
      teamId,
      userId: alice,
      botScopes: ["chat:write"],
      metadata: { app_id: h.emu.demoApp.appId },
    });
    // Alice reinstalling is acme's own reconnect.
    expect(await plainInstall(h, teamId, alice)).toContain("connection_id=acme");
    const alices = await userToken(h, "acme");
    expect(alices).not.toBe(first);
    // Bob's install carries Bob's user token: in acme it would stand in for Alice's.
    expect(await plainInstall(h, teamId, bob)).toContain(`connection_id=${teamId}`);
    expect(await userToken(h, "acme")).toBe(alices);
  });
});
