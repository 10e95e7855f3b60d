// A reconnect link (bare, signed, or a connect session) names a connection; the install it completes
// must be that connection's own, not only in its workspace: another member's user token would stand
// in for the member the connection belongs to, and another Slack app's connection would get this
// app's tokens. A bare link is anyone's to type, so any member of the workspace could otherwise swap
// a live connection's token for their own.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import {
  botFromInstall,
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

/** An app with user scopes only: each member's install is that member's own user token. */
const USER_TOKEN_ONLY = { TOKENWARDEN_SLACK_SCOPES: "", TOKENWARDEN_SLACK_USER_SCOPES: "users:read" };
/** An app with a bot (the default scopes) and user scopes. */
const BOT_AND_USER = { TOKENWARDEN_SLACK_USER_SCOPES: "users:read" };

/** What a server's fetch sent to auth.revoke, in order (the bearer of each call). */
function revokeRecorder() {
  const revoked: string[] = [];
  const fetchRecording: typeof fetch = async (input, init) => {
    if (String(input).endsWith("/api/auth.revoke")) {
      revoked.push(new Headers(init?.headers).get("authorization")?.slice("Bearer ".length) ?? "");
    }
    return fetch(input, init);
  };
  return { revoked, fetchRecording };
}

/** Follows `link` to the end as `userId` of `teamId`; the callback's answer. */
async function followAs(h: ServerHarness, link: string, teamId: string, userId: string): Promise<Response> {
  h.emu.control.setAuthorize({ mode: "approve", teamId, userId });
  try {
    return await installViaBrowser(h, link);
  } finally {
    h.emu.control.setAuthorize({ teamId: null, userId: null });
  }
}

async function connectSession(h: ServerHarness, id: string): Promise<string> {
  const res = await h.api("/v1/connect-sessions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ connection_id: id }),
  });
  expect(res.status).toBe(201);
  return String(((await res.json()) as Json)["url"]);
}

describe("a reconnect link of a user-token-only app's connection (one per member)", () => {
  let h: ServerHarness;
  const { revoked, fetchRecording } = revokeRecorder();
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: USER_TOKEN_ONLY, server: { fetch: fetchRecording } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("never stores another member's user token in the member's connection, whatever the link", async () => {
    const { teamId, alice, bob } = workspaceWith(h, "members", "alice", "bob");
    const id = "alice-at-members";
    const token = await importMember(h, { id, teamId, userId: alice });
    for (const [what, link] of [
      ["bare", installLink(h, id)],
      ["signed", h.server.reconnectUrl(id)],
      ["connect session", await connectSession(h, id)],
    ] as const) {
      revoked.length = 0;
      const page = await followAs(h, link, teamId, bob);
      expect(page.status, what).toBe(400);
      expect(await userToken(h, id), what).toBe(token);
      expect(await metadataOf(h, id), what).toMatchObject({ authed_user_id: alice });
      // Bob's new user token was issued and is held by nobody: revoked, refresh token first.
      expect(revoked, what).toHaveLength(2);
      for (const t of revoked) expect(h.emu.control.tokenInfo(t).state, what).not.toBe("active");
    }
    // Alice herself reconnects through the same link.
    const back = await followAs(h, h.server.reconnectUrl(id), teamId, alice);
    expect(back.status).toBe(303);
    expect(back.headers.get("location")).toContain(`connection_id=${id}`);
  });

  it("tells a signed link's follower why, and a bare link's the one page every wrong outcome gets", async () => {
    const { teamId, carol, dave } = workspaceWith(h, "members, told", "carol", "dave");
    const id = "carol-at-told";
    await importMember(h, { id, teamId, userId: carol });
    const signed = await followAs(h, h.server.reconnectUrl(id), teamId, dave);
    expect(signed.status).toBe(400);
    expect(await signed.text()).toContain("different member");
    // A bare link's refusal reads as for an id that is not stored at all.
    const bare = await followAs(h, installLink(h, id), teamId, dave);
    const unknown = await followAs(h, installLink(h, "no-such-connection"), teamId, dave);
    expect(bare.status).toBe(unknown.status);
    expect(await bare.text()).toBe(await unknown.text());
  });

  it("never stores this app's tokens in a connection of another Slack app", async () => {
    const other = h.emu.control.createApp({});
    const { teamId, erin } = workspaceWith(h, "two apps", "erin");
    const id = "other-app-at-two-apps";
    const token = await importMember(h, {
      id,
      teamId,
      userId: erin,
      clientId: other.clientId,
      metadata: { app_id: other.appId },
    });
    const page = await followAs(h, h.server.reconnectUrl(id), teamId, erin);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("another Slack app");
    expect(await userToken(h, id)).toBe(token);
    expect(await metadataOf(h, id)).toMatchObject({ app_id: other.appId });
  });
});

describe("a reconnect link of an app with a bot and user scopes", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: BOT_AND_USER });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("reconnects for the member the connection names, never hands it another member's user token", async () => {
    const { teamId, alice, bob } = workspaceWith(h, "bot and user", "alice", "bob");
    const id = "acme";
    const token = await importMember(h, {
      id,
      teamId,
      userId: alice,
      botScopes: ["chat:write"],
      metadata: { app_id: h.emu.demoApp.appId },
    });
    const bare = await followAs(h, installLink(h, id), teamId, bob);
    expect(bare.status).toBe(400);
    expect(await userToken(h, id)).toBe(token);
    const back = await followAs(h, h.server.reconnectUrl(id), teamId, alice);
    expect(back.status).toBe(303);
    expect(await userToken(h, id)).not.toBe(token);
    expect(await metadataOf(h, id)).toMatchObject({ authed_user_id: alice });
  });

  it("a connection that names no member is reconnected by whoever installs in its workspace", async () => {
    const { teamId, frank } = workspaceWith(h, "no member named", "frank");
    const install = h.emu.control.install({ clientId: h.emu.demoApp.clientId, teamId });
    await h.server.warden.connections.import({
      id: "no-member",
      provider: "slack",
      credentials: { bot: botFromInstall(install) },
      metadata: { team_id: teamId },
    });
    const back = await followAs(h, h.server.reconnectUrl("no-member"), teamId, frank);
    expect(back.status).toBe(303);
    expect(await metadataOf(h, "no-member")).toMatchObject({ authed_user_id: frank });
  });
});

// The install flow stores an installation under its workspace's id. In a user-token-only app that
// connection is one member's: another member's install, through the app's plain link or a link
// naming it, must not put their user token in its place; nor may this app's install replace another
// Slack app's connection stored under that id.
describe("an install into a workspace whose connection (under its own id) is not the installation's", () => {
  let h: ServerHarness;
  const { revoked, fetchRecording } = revokeRecorder();
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: USER_TOKEN_ONLY, server: { fetch: fetchRecording } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("a second member's install leaves the first member's connection alone, and its tokens are revoked", async () => {
    const { teamId, alice, bob } = workspaceWith(h, "first member", "alice", "bob");
    const plain = installLink(h);
    const first = await followAs(h, plain, teamId, alice);
    expect(first.headers.get("location")).toContain(`connection_id=${teamId}`);
    const alices = await userToken(h, teamId);
    for (const [what, link] of [
      ["plain", plain],
      ["bare", installLink(h, teamId)],
      ["signed", h.server.reconnectUrl(teamId)],
    ] as const) {
      revoked.length = 0;
      const page = await followAs(h, link, teamId, bob);
      expect(page.status, what).toBe(400);
      expect(await userToken(h, teamId), what).toBe(alices);
      expect(revoked, what).toHaveLength(2);
      for (const t of revoked) expect(h.emu.control.tokenInfo(t).state, what).not.toBe("active");
    }
    // Alice's own reinstall is the connection's reconnect.
    const again = await followAs(h, plain, teamId, alice);
    expect(again.status).toBe(303);
    expect(await userToken(h, teamId)).not.toBe(alices);
  });

  it("an install of this app leaves another Slack app's connection under the workspace's id alone", async () => {
    const other = h.emu.control.createApp({});
    const { teamId, carol } = workspaceWith(h, "other app first", "carol");
    const token = await importMember(h, {
      id: teamId,
      teamId,
      userId: carol,
      clientId: other.clientId,
      metadata: { app_id: other.appId },
    });
    const page = await followAs(h, installLink(h), teamId, carol);
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("another Slack app");
    expect(await userToken(h, teamId)).toBe(token);
    expect(await metadataOf(h, teamId)).toMatchObject({ app_id: other.appId });
  });
});

describe("a user-token-only app's connection that names no member", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: USER_TOKEN_ONLY });
  });
  afterAll(async () => {
    await h?.close();
  });

  // Imported without authed_user_id: nothing says whose user token it holds, so no member's install
  // may take it; the page says why and what fixes it, as for a connection whose workspace is unknown.
  it("is not taken by whoever installs; the page says its member is not known", async () => {
    const { teamId, gina } = workspaceWith(h, "nameless", "gina");
    const token = await importMember(h, { id: "nameless", teamId, userId: gina, named: false });
    const page = await followAs(h, h.server.reconnectUrl("nameless"), teamId, gina);
    expect(page.status).toBe(400);
    const text = (await page.text()).replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
    expect(text).toContain("member is not known");
    // The fix named first is the one that works against Slack: a health check (auth.test names a user
    // token's member); a refresh answer's user_id has not been seen from Slack (slack-api.md §3.3).
    expect(text).toContain("tokenwarden connections check <id>");
    expect(text).toContain("POST /v1/connections/<id>/check");
    expect(text.indexOf("connections check")).toBeLessThan(
      text.indexOf("authed_user_id", text.indexOf("Nothing")),
    );
    expect(text).not.toContain("refreshed");
    expect(await userToken(h, "nameless")).toBe(token);
    // Following the page's advice: a check, then gina's own install reconnects it.
    expect((await h.api("/v1/connections/nameless/check", { method: "POST" })).status).toBe(200);
    const again = await followAs(h, h.server.reconnectUrl("nameless"), teamId, gina);
    expect(again.status).toBe(303);
  });
});

// The member test guards a live user token: another member's must not stand in for it. A connection
// holding no user token (its installer left and was signed out of it, the bot kept) stands in for
// nobody, and is the workspace's to reconnect, whoever installs, as a bot-only one is.
describe("a connection whose installer's user token was deleted, the bot kept", () => {
  let h: ServerHarness;
  const { revoked, fetchRecording } = revokeRecorder();
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: BOT_AND_USER, server: { fetch: fetchRecording } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("is reconnected by another member, through its link or a plain install, and nothing is revoked", async () => {
    const { teamId, alice, bob, carol } = workspaceWith(h, "installer left", "alice", "bob", "carol");
    const id = "acme-installer-left";
    await importMember(h, {
      id,
      teamId,
      userId: alice,
      botScopes: ["chat:write"],
      metadata: { app_id: h.emu.demoApp.appId },
    });
    // While it holds alice's user token, another member's link is refused, and the page says the way out.
    const refused = await followAs(h, h.server.reconnectUrl(id), teamId, bob);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("remove their user token");
    const signOut = async () => {
      const res = await h.api(`/v1/connections/${id}/credentials/user`, { method: "DELETE" });
      expect(res.status).toBe(200);
      // What the operator signed out is gone; the metadata still names alice as its installer.
      expect(await metadataOf(h, id)).toMatchObject({ authed_user_id: expect.any(String) });
    };
    await signOut();
    // Bob's "Add to Slack" reconnects it (not a second connection under the workspace's id).
    revoked.length = 0;
    const plain = await followAs(h, installLink(h), teamId, bob);
    expect(plain.status).toBe(303);
    expect(plain.headers.get("location")).toContain(`connection_id=${id}`);
    expect(revoked).toEqual([]);
    await expect(h.server.warden.connections.get(teamId)).rejects.toMatchObject({ code: "not_found" });
    expect(await metadataOf(h, id)).toMatchObject({ authed_user_id: bob });
    // Bob leaves in turn; carol follows the connection's reconnect link.
    await signOut();
    revoked.length = 0;
    const signed = await followAs(h, h.server.reconnectUrl(id), teamId, carol);
    expect(signed.status).toBe(303);
    expect(signed.headers.get("location")).toContain(`connection_id=${id}`);
    expect(revoked).toEqual([]);
    const now = await h.server.warden.connections.get(id);
    expect(now.metadata).toMatchObject({ authed_user_id: carol });
    expect(now.credentials.map((c) => c.kind).sort()).toEqual(["bot", "user"]);
    expect(now.status).toBe("active");
  });
});

// Whose user token a connection holds is Slack's word before the metadata's: the user credential's
// user_id, which the install flow stores and every refresh of a user token records. A connection
// imported without authed_user_id (the README's import example has none) has it after its first
// refresh; another member must not take it, and its own member must not be turned away.

/** Expects `id`'s metadata to name no member, and its user credential to name `userId` (as Slack did). */
async function expectNamedBySlackOnly(h: ServerHarness, id: string, userId: string): Promise<void> {
  const connection = await h.server.warden.connections.get(id);
  expect(connection.metadata["authed_user_id"]).toBeUndefined();
  expect(connection.credentials.find((c) => c.kind === "user")?.providerData).toMatchObject({
    user_id: userId,
  });
}

/** Imports `userId`'s user token (and a bot, with `botScopes`) with no member named, then refreshes it. */
async function importUnnamed(
  h: ServerHarness,
  o: { id: string; teamId: string; userId: string; botScopes?: string[] },
): Promise<string> {
  await importMember(h, { ...o, named: false });
  const res = await h.api(`/v1/connections/${o.id}/refresh`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "user" }),
  });
  expect(res.status).toBe(200);
  await expectNamedBySlackOnly(h, o.id, o.userId);
  return userToken(h, o.id);
}

describe("a connection with a bot whose metadata names no member, but whose user token Slack named", () => {
  let h: ServerHarness;
  const { revoked, fetchRecording } = revokeRecorder();
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: BOT_AND_USER, server: { fetch: fetchRecording } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("is not taken by another member through a bare link; its member reconnects it", async () => {
    const { teamId, alice, bob } = workspaceWith(h, "unnamed, bot", "alice", "bob");
    const id = "unnamed-bot-and-user";
    const token = await importUnnamed(h, { id, teamId, userId: alice, botScopes: ["chat:write"] });
    revoked.length = 0;
    const bare = await followAs(h, installLink(h, id), teamId, bob);
    expect(bare.status).toBe(400);
    expect(await userToken(h, id)).toBe(token);
    // Bob's new bot and user tokens, each refresh token first, held by nobody.
    expect(revoked).toHaveLength(4);
    for (const t of revoked) expect(h.emu.control.tokenInfo(t).state).not.toBe("active");
    const back = await followAs(h, h.server.reconnectUrl(id), teamId, alice);
    expect(back.status).toBe(303);
    expect(await metadataOf(h, id)).toMatchObject({ authed_user_id: alice });
  });
});

describe("a user-token-only connection whose metadata names no member, but whose token Slack named", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: USER_TOKEN_ONLY });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("is reconnected by its member, and refused to another", async () => {
    const { teamId, gina, hank } = workspaceWith(h, "unnamed, user only", "gina", "hank");
    const id = "unnamed-user-only";
    const token = await importUnnamed(h, { id, teamId, userId: gina });
    const other = await followAs(h, h.server.reconnectUrl(id), teamId, hank);
    expect(other.status).toBe(400);
    expect(await other.text()).toContain("different member");
    expect(await userToken(h, id)).toBe(token);
    const own = await followAs(h, h.server.reconnectUrl(id), teamId, gina);
    expect(own.status).toBe(303);
    expect(await userToken(h, id)).not.toBe(token);
  });
});

// Slack's refresh answer for a user token is documented to name its member (user_id), but no
// captured answer has shown it (slack-api.md §3.3); auth.test does name it (§4.2). So a health check
// records it in the user credential's provider data, where nothing is there, and a connection
// imported without any member becomes its member's to reconnect, and nobody else's.
describe.each(STORE_KINDS)(
  "a user-token-only connection imported naming no member, then checked (%s)",
  (kind) => {
    let h: ServerHarness;
    beforeAll(async () => {
      h = await openServerHarness(kind, { env: USER_TOKEN_ONLY });
    });
    afterAll(async () => {
      await h?.close();
    });

    it("is refused to another member and reconnected by its own", async () => {
      const { teamId, ida, jon } = workspaceWith(h, `checked, ${kind}`, "ida", "jon");
      const id = `unnamed-checked-${kind}`;
      const token = await importMember(h, { id, teamId, userId: ida, named: false });
      const check = await h.api(`/v1/connections/${id}/check`, { method: "POST" });
      expect(check.status).toBe(200);
      await expectNamedBySlackOnly(h, id, ida);
      // The check neither refreshed nor replaced the token.
      expect(await userToken(h, id)).toBe(token);
      const other = await followAs(h, h.server.reconnectUrl(id), teamId, jon);
      expect(other.status).toBe(400);
      expect(await other.text()).toContain("different member");
      expect(await userToken(h, id)).toBe(token);
      const own = await followAs(h, h.server.reconnectUrl(id), teamId, ida);
      expect(own.status).toBe(303);
      expect(own.headers.get("location")).toContain(`connection_id=${id}`);
      expect(await userToken(h, id)).not.toBe(token);
      expect(await metadataOf(h, id)).toMatchObject({ authed_user_id: ida });
    });
  },
);
