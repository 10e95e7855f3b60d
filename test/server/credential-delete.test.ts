// DELETE /v1/connections/:id/credentials/:kind through the real server, against the emulator over
// HTTP: a user signed out at Slack, the bot kept, the connection's status rolled up, a webhook for the
// episode it ends; and every refusal in the API's error shape. On both stores.
import { afterEach, describe, expect, it } from "vitest";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { botFromInstall, openServerHarness, type ServerHarness, WebhookReceiver } from "./server-harness.js";

type Json = Record<string, unknown>;

describe.each(STORE_KINDS)("DELETE /v1/connections/:id/credentials/:kind (%s)", (kind) => {
  let h: ServerHarness;
  let receiver: WebhookReceiver | undefined;
  afterEach(async () => {
    await h?.close();
    await receiver?.down();
  });

  /** A workspace installed with a user token too, imported as bot and user credentials. */
  async function installWithUser(name: string) {
    const team = h.emu.control.createTeam({ name });
    const { userId } = h.emu.control.createUser(team.teamId);
    const install = h.emu.control.install({
      clientId: h.emu.demoApp.clientId,
      teamId: team.teamId,
      userId,
      botScopes: ["chat:write"],
      userScopes: ["users:read"],
    });
    const user = install["authed_user"] as { access_token: string; refresh_token: string };
    await h.server.warden.connections.import({
      id: team.teamId,
      provider: "slack",
      credentials: { bot: botFromInstall(install), user: botFromInstall(user) },
    });
    return { id: team.teamId, bot: install.access_token ?? "", user };
  }

  const slackAuthTest = async (token: string) =>
    (await (
      await fetch(`${h.emu.url}/api/auth.test`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as Json;

  it("signs the user out at Slack, keeps the bot, ends the dead user's episode with a webhook", async () => {
    receiver = new WebhookReceiver();
    await receiver.up();
    h = await openServerHarness(kind, { webhookUrl: receiver.url });
    const { id, bot, user } = await installWithUser("Acme");

    // The user token dies at Slack; a proxied call with it finds out.
    h.emu.control.leakToken(user.access_token);
    const proxied = await h.api(`/v1/proxy/${id}/auth.test`, {
      method: "POST",
      headers: { "x-tokenwarden-kind": "user" },
    });
    expect(proxied.status).toBe(409);
    expect(await h.api(`/v1/connections/${id}`).then((r) => r.json())).toMatchObject({
      status: "needs_reauth",
      reason: "token_revoked",
    });

    const res = await h.api(`/v1/connections/${id}/credentials/user?revoke=true`, { method: "DELETE" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Json;
    expect(body).toMatchObject({
      deleted: true,
      revoked: [{ kind: "user", ok: true }],
      connection: { id, status: "active", reason: null, credentials: [{ kind: "bot", status: "active" }] },
    });
    expect((body["connection"] as { credentials: unknown[] }).credentials).toHaveLength(1);
    // Revoked at Slack: the refresh token too, so nothing can mint a new user token from it.
    expect(await slackAuthTest(user.access_token)).toMatchObject({ ok: false, error: "token_revoked" });
    expect(h.emu.control.tokenInfo(user.refresh_token)).toMatchObject({ state: "revoked" });
    expect(await slackAuthTest(bot)).toMatchObject({ ok: true });
    const said = JSON.stringify(body);
    for (const secret of [user.access_token, user.refresh_token, bot]) expect(said).not.toContain(secret);

    // The user token is gone from every route; the bot is served.
    const token = await h.api(`/v1/connections/${id}/token?kind=user`);
    expect(token.status).toBe(404);
    expect(await token.json()).toEqual({
      error: { code: "not_found", message: `no user credential on connection ${id}` },
    });
    expect((await h.api(`/v1/connections/${id}/token?kind=bot`)).status).toBe(200);
    const events = (await h.api(`/v1/connections/${id}/events`).then((r) => r.json())) as {
      items: Json[];
    };
    expect(events.items.slice(0, 2)).toMatchObject([
      { type: "recovered", kind: "user" },
      { type: "deleted", kind: "user", data: { revoked: true } },
    ]);

    const hooks = () =>
      receiver?.received.map((r) => (JSON.parse(r.body) as { type: string }).type) ?? ([] as string[]);
    await expect
      .poll(hooks, { timeout: 10_000 })
      .toEqual(["connection.needs_reauth", "connection.recovered"]);
  });

  it("refuses in the API's error shape and changes nothing: unknown kind or connection 404, the last credential 409, bad input 400", async () => {
    h = await openServerHarness(kind);
    const botOnly = await h.installAndImport("Bot only");
    const refused = async (path: string, status: number, error: Json, headers: Json = {}) => {
      const res = await h.api(path, { method: "DELETE", headers: headers as Record<string, string> });
      expect(res.status, path).toBe(status);
      expect(await res.json(), path).toEqual({ error });
    };
    await refused(`/v1/connections/${botOnly}/credentials/user?revoke=true`, 404, {
      code: "not_found",
      message: `connection ${botOnly} has no user credential (it holds bot)`,
    });
    await refused(`/v1/connections/${botOnly}/credentials/xoxb-1-secret?revoke=true`, 404, {
      code: "not_found",
      message: `connection ${botOnly} has no such credential: a kind is bot, user or default (it holds bot)`,
    });
    await refused("/v1/connections/T-unknown/credentials/user", 404, {
      code: "not_found",
      message: "no connection T-unknown",
    });
    await refused(`/v1/connections/${botOnly}/credentials/bot?revoke=true`, 409, {
      code: "conflict",
      message: `the bot credential is the only one connection ${botOnly} holds: delete the connection instead`,
    });
    await refused(`/v1/connections/${botOnly}/credentials/bot?revoke=maybe`, 400, {
      code: "invalid_input",
      message: expect.stringContaining("query.revoke"),
    });
    await refused(`/v1/connections/${botOnly}/credentials/${"x".repeat(100)}`, 400, {
      code: "invalid_input",
      message: expect.stringContaining("params.kind"),
    });
    const noKey = await fetch(`${h.server.url}/v1/connections/${botOnly}/credentials/bot`, {
      method: "DELETE",
    });
    expect(noKey.status).toBe(401);
    // The proxy still refuses auth.revoke, and says which route signs the credential out.
    const proxied = await h.api(`/v1/proxy/${botOnly}/auth.revoke`, {
      method: "POST",
      headers: { "x-tokenwarden-kind": "user" },
    });
    expect(proxied.status).toBe(400);
    expect(await proxied.json()).toEqual({
      error: {
        code: "invalid_input",
        message: `auth.revoke would end the connection's tokens without the store knowing; use DELETE /v1/connections/${botOnly}/credentials/user?revoke=true (that credential, when the connection holds another) or DELETE /v1/connections/${botOnly}?revoke=true (the connection)`,
      },
    });
    expect(h.emu.control.counters().calls["auth.revoke"] ?? 0).toBe(0);
    expect(await h.api(`/v1/connections/${botOnly}`).then((r) => r.json())).toMatchObject({
      status: "active",
      credentials: [{ kind: "bot" }],
    });
  });

  it("is in /openapi.json, with its revoke parameter", async () => {
    h = await openServerHarness(kind);
    const doc = (await (await fetch(`${h.server.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string }> }>>;
    };
    const op = doc.paths["/v1/connections/{id}/credentials/{kind}"]?.["delete"];
    expect(op?.parameters?.map((p) => `${p.in}:${p.name}`).sort()).toEqual([
      "path:id",
      "path:kind",
      "query:revoke",
    ]);
  });
});
