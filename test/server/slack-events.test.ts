// Slack events that must not be lost: a store that fails while looking the team up, and Slack's
// http_timeout retry arriving while the first delivery is still being acted on (slack-api.md §6.6).
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import { signSlackRequest } from "../../src/providers/slack/slack-signature.js";
import { applySlackEvent } from "../../src/server/slack-events.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import {
  botFromInstall,
  installViaBrowser,
  openServerHarness,
  postSlackEvent,
  type ServerHarness,
  WebhookReceiver,
} from "./server-harness.js";

describe.each(STORE_KINDS)("slack events (%s)", (kind) => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness(kind);
  });
  afterAll(async () => {
    await h?.close();
  });

  let n = 0;
  const uninstalled = (teamId: string) =>
    JSON.stringify({
      type: "event_callback",
      team_id: teamId,
      event_id: `Ev${kind}${++n}`,
      event: { type: "app_uninstalled" },
    });
  const deliver = (body: string, retry?: number) => postSlackEvent(h, body, retry);

  /** tokens_revoked naming bot user ids (`bot`) and user ids (`oauth`). */
  const revoked = (teamId: string, tokens: { bot?: string[]; oauth?: string[] }) =>
    JSON.stringify({
      type: "event_callback",
      team_id: teamId,
      event_id: `Ev${kind}${++n}`,
      event: { type: "tokens_revoked", tokens },
    });

  const statuses = async (id: string) =>
    Object.fromEntries(
      (await h.server.warden.connections.get(id)).credentials.map((c) => [c.kind, c.status]),
    );

  async function importBotAndUser(teamId: string): Promise<void> {
    await h.server.warden.connections.import({
      id: teamId,
      provider: "slack",
      credentials: {
        bot: {
          accessToken: "xoxe.xoxb-1-b",
          refreshToken: "xoxe-1-b",
          expiresIn: 43_200,
          providerData: { bot_user_id: "UBOT" },
        },
        user: {
          accessToken: "xoxe.xoxp-1-u",
          refreshToken: "xoxe-1-u",
          expiresIn: 43_200,
          providerData: { user_id: "UUSER" },
        },
      },
    });
  }

  it("a revoked bot token kills the bot credential only", async () => {
    await importBotAndUser("TREV1");
    expect((await deliver(revoked("TREV1", { bot: ["UBOT"] }))).statusCode).toBe(200);
    expect(await statuses("TREV1")).toEqual({ bot: "needs_reauth", user: "active" });
  });

  it("a revoked user token kills the user credential only", async () => {
    await importBotAndUser("TREV2");
    expect((await deliver(revoked("TREV2", { oauth: ["UUSER"] }))).statusCode).toBe(200);
    expect(await statuses("TREV2")).toEqual({ bot: "active", user: "needs_reauth" });
  });

  it("a revoked token of another user changes nothing", async () => {
    await importBotAndUser("TREV3");
    await deliver(revoked("TREV3", { oauth: ["UOTHER"] }));
    expect(await statuses("TREV3")).toEqual({ bot: "active", user: "active" });
  });

  // A credential whose bot or user id was never recorded is named by no id, not by the text "undefined".
  it("a tokens_revoked naming the id 'undefined' leaves credentials without a recorded id alone", async () => {
    await h.server.warden.connections.import({
      id: "TREV4",
      provider: "slack",
      credentials: {
        bot: { accessToken: "xoxe.xoxb-1-b4", refreshToken: "xoxe-1-b4", expiresIn: 43_200 },
        user: { accessToken: "xoxe.xoxp-1-u4", refreshToken: "xoxe-1-u4", expiresIn: 43_200 },
      },
    });
    const res = await deliver(revoked("TREV4", { bot: ["undefined"], oauth: ["undefined", ""] }));
    expect(res.statusCode).toBe(200);
    expect(await statuses("TREV4")).toEqual({ bot: "active", user: "active" });
  });

  // Slack signs what it sends; an event_time out of any clock's range is no reason for a 5xx (which
  // Slack would retry for an hour): the event is judged as one of unknown time.
  it("an event_time past any date still acts, answering 200", async () => {
    await importBotAndUser("TREV5");
    const body = JSON.parse(revoked("TREV5", { bot: ["UBOT"] })) as Record<string, unknown>;
    const res = await deliver(JSON.stringify({ ...body, event_time: 1e300 }));
    expect(res.statusCode).toBe(200);
    expect(await statuses("TREV5")).toEqual({ bot: "needs_reauth", user: "active" });
  });
  const status = async (id: string) => (await h.server.warden.connections.get(id)).status;

  it("a store failure while finding the team is a 5xx, and Slack's retry acts on the event", async () => {
    const teamId = await h.installAndImport("store-fails");
    const connections = h.server.warden.connections;
    const get = connections.get;
    connections.get = async () => {
      connections.get = get;
      throw new TokenwardenError("store_unavailable", "the store is down");
    };
    const body = uninstalled(teamId);
    const first = await deliver(body);
    expect(first.statusCode).toBe(503);
    expect(await status(teamId)).toBe("active");
    const retry = await deliver(body, 1);
    expect(retry.statusCode).toBe(200);
    expect(await status(teamId)).toBe("needs_reauth");
  });

  it("a retry while the first delivery is still acting is refused, so a failing first delivery loses nothing", async () => {
    const teamId = await h.installAndImport("slow-first");
    const warden = h.server.warden;
    const mark = warden.markNeedsReauth;
    let fail!: () => void;
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    warden.markNeedsReauth = () =>
      new Promise((_, reject) => {
        entered();
        fail = () => reject(new TokenwardenError("store_unavailable", "the store is down"));
      });
    const body = uninstalled(teamId);
    const first = deliver(body);
    await inside;
    const early = await deliver(body, 1); // Slack's http_timeout retry, 3 s in
    expect(early.statusCode).toBe(409);
    warden.markNeedsReauth = mark;
    fail();
    expect((await first).statusCode).toBe(503);
    expect(await status(teamId)).toBe("active");
    const later = await deliver(body, 2); // a minute on
    expect(later.statusCode).toBe(200);
    expect(await status(teamId)).toBe("needs_reauth");
    const events = await warden.connections.events(teamId);
    expect(events.filter((e) => e.type === "needs_reauth")).toHaveLength(1);
    // Acted on now: a further retry is acknowledged and changes nothing.
    expect((await deliver(body, 3)).statusCode).toBe(200);
    expect(await warden.connections.events(teamId)).toEqual(events);
  });

  // The store blips twice: acting on the event fails, and so does forgetting its id; the in-flight
  // mark, removed a moment later, must stay, or Slack's immediate retry finds the id "done" and is
  // acknowledged, and the event is never acted on.
  it("a failed delivery whose id could not be forgotten makes retries wait, not acknowledges them", async () => {
    const teamId = await h.installAndImport("forget-fails");
    const warden = h.server.warden;
    const mark = warden.markNeedsReauth;
    warden.markNeedsReauth = async () => {
      warden.markNeedsReauth = mark;
      throw new TokenwardenError("store_unavailable", "the store is down");
    };
    const proto = (kind === "sqlite" ? SqliteStore : PostgresStore).prototype;
    const unmark = vi.spyOn(proto, "unmarkOnce").mockImplementationOnce(async (scope) => {
      throw new TokenwardenError("store_unavailable", `the store is down (${scope})`);
    });
    try {
      const body = uninstalled(teamId);
      expect((await deliver(body)).statusCode).toBe(503);
      expect(unmark.mock.calls[0]?.[0]).toBe("slack_event");
      // Slack's first retry, nearly at once: not acted on, so not acknowledged either.
      expect((await deliver(body, 1)).statusCode).toBe(409);
      expect(await status(teamId)).toBe("active");
      // Its second, a minute on: the marks have lapsed, and the event is acted on.
      h.clock.advance(61_000);
      expect((await deliver(body, 2)).statusCode).toBe(200);
      expect(await status(teamId)).toBe("needs_reauth");
    } finally {
      unmark.mockRestore();
      warden.markNeedsReauth = mark;
    }
  });

  // The done mark's write commits but its answer is lost (a connection dropped after COMMIT): the
  // mark may be there though the call threw, so it is taken back before the in-flight mark goes, or
  // Slack's immediate retry finds the id "done", is acknowledged, and the event is never acted on.
  it("a done mark whose answer was lost does not acknowledge the retry unacted", async () => {
    const teamId = await h.installAndImport("mark-answer-lost");
    const proto = (kind === "sqlite" ? SqliteStore : PostgresStore).prototype;
    const original = proto.markOnce;
    let lost = false;
    const mark = vi.spyOn(proto, "markOnce").mockImplementation(async function (
      this: SqliteStore | PostgresStore,
      scope,
      key,
      nowMs,
      until,
    ) {
      const marked = await original.call(this, scope, key, nowMs, until);
      if (scope !== "slack_event" || lost) return marked;
      lost = true;
      throw new TokenwardenError("store_unavailable", "the connection dropped after COMMIT");
    });
    try {
      const body = uninstalled(teamId);
      expect((await deliver(body)).statusCode).toBe(503);
      expect(lost).toBe(true);
      // Slack's first retry, nearly at once, acts on the event.
      expect((await deliver(body, 1)).statusCode).toBe(200);
      expect(await status(teamId)).toBe("needs_reauth");
    } finally {
      mark.mockRestore();
    }
  });

  // Slack retries a delivery for minutes and holds Delayed Events for a day: an event that happened
  // before a reconnect must not kill the tokens the reconnect stored (its event_time says when).
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

// Which connections an event reaches: the installation's, however they were imported (README "Slack
// events"). Delivered by the emulator itself, signed, to the server's /slack/events.
describe.each(STORE_KINDS)("slack events reach every connection of the installation (%s)", (kind) => {
  let h: ServerHarness;
  const receiver = new WebhookReceiver();
  const eventsUrl = () => `${h.server.url}/slack/events`;
  beforeAll(async () => {
    await receiver.up();
    h = await openServerHarness(kind, { webhookUrl: receiver.url });
    h.emu.control.setEventsUrl(h.emu.demoApp.clientId, eventsUrl());
  });
  afterAll(async () => {
    await h?.close();
    await receiver.down();
  });

  const connectionOf = (id: string) => h.server.warden.connections.get(id);
  /** Installs the demo app into `teamId` (or an org) and imports its bot token as `id` (generated when absent). */
  const importInstall = async (
    teamId: string,
    options: { id?: string; metadata?: Record<string, unknown>; enterpriseInstall?: boolean } = {},
  ) => {
    const install = h.emu.control.install({
      clientId: h.emu.demoApp.clientId,
      teamId,
      ...(options.enterpriseInstall ? { enterpriseInstall: true } : {}),
    });
    const imported = await h.server.warden.connections.import({
      ...(options.id === undefined ? {} : { id: options.id }),
      provider: "slack",
      credentials: { bot: botFromInstall(install) },
      ...(options.metadata === undefined ? {} : { metadata: options.metadata }),
    });
    return imported.id;
  };
  /** Uninstalls the demo app in the emulator and waits until its events were delivered. */
  const uninstall = async (teamOrEnterpriseId: string) => {
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: teamOrEnterpriseId });
    const mine = (await h.emu.control.flushEvents()).filter((d) => d.teamId === teamOrEnterpriseId);
    expect(mine.map((d) => [d.type, d.state]).sort()).toEqual([
      ["app_uninstalled", "delivered"],
      ["tokens_revoked", "delivered"],
    ]);
  };

  it("reaches a connection imported without an id, by its metadata team_id; another team's stay active", async () => {
    const team = h.emu.control.createTeam({ name: "imported-without-id" });
    const id = await importInstall(team.teamId, { metadata: { team_id: team.teamId } });
    expect(id).toMatch(/^conn_/);
    const neighbour = h.emu.control.createTeam({ name: "neighbour" });
    const byId = await importInstall(neighbour.teamId, { id: neighbour.teamId });
    const byMetadata = await importInstall(neighbour.teamId, { metadata: { team_id: neighbour.teamId } });
    await uninstall(team.teamId);
    expect(await connectionOf(id)).toMatchObject({ status: "needs_reauth", reason: "app_uninstalled" });
    expect((await connectionOf(byId)).status).toBe("active");
    expect((await connectionOf(byMetadata)).status).toBe("active");
  });

  it("reaches a connection imported under an id of its own once a health check learned its team_id", async () => {
    const team = h.emu.control.createTeam({ name: "own-id" });
    const id = await importInstall(team.teamId, { id: `acme-${team.teamId.toLowerCase()}` });
    await h.server.warden.connections.check(id);
    expect((await connectionOf(id)).metadata).toMatchObject({ team_id: team.teamId });
    await uninstall(team.teamId);
    expect(await connectionOf(id)).toMatchObject({ status: "needs_reauth", reason: "app_uninstalled" });
  });

  it("reaches every connection of one workspace, the one under its id and those whose metadata names it", async () => {
    const team = h.emu.control.createTeam({ name: "imported-twice" });
    const byId = await importInstall(team.teamId, { id: team.teamId });
    const again = await importInstall(team.teamId, { metadata: { team_id: team.teamId } });
    await uninstall(team.teamId);
    expect((await connectionOf(byId)).status).toBe("needs_reauth");
    expect((await connectionOf(again)).status).toBe("needs_reauth");
  });

  it("a store failing to look the installation up in metadata fails the event (5xx, Slack retries)", async () => {
    const team = h.emu.control.createTeam({ name: "lookup-fails" });
    const id = await importInstall(team.teamId, { metadata: { team_id: team.teamId } });
    const envelope = { type: "event_callback", team_id: team.teamId, event: { type: "app_uninstalled" } };
    const failing = async () => {
      throw new TokenwardenError("store_unavailable", "the store is down");
    };
    await expect(
      applySlackEvent(
        { warden: h.server.warden, store: { findConnectionsByInstallation: failing } },
        envelope,
      ),
    ).rejects.toMatchObject({ code: "store_unavailable" });
    expect((await connectionOf(id)).status).toBe("active");
    // An id no connection could have (the store refuses it as input) is an unknown installation.
    const refusing = async () => {
      throw new TokenwardenError("invalid_input", "team id must not contain NUL");
    };
    expect(
      await applySlackEvent(
        { warden: h.server.warden, store: { findConnectionsByInstallation: refusing } },
        envelope,
      ),
    ).toEqual({ handled: false, why: "unknown installation" });
  });

  /** An org with a first workspace, and the app installed org-wide, imported by its enterprise_id. */
  const importOrgWide = async (name: string, enterpriseId: string) => {
    const workspace = h.emu.control.createTeam({ name, enterpriseId });
    const org = await importInstall(workspace.teamId, {
      enterpriseInstall: true,
      metadata: { enterprise_id: enterpriseId },
    });
    return { workspace, enterpriseId, org };
  };

  it("an org-wide uninstall reaches the org's connection by enterprise_id, not a workspace's own install", async () => {
    // The org-wide install, and the same org's workspace with an install of its own.
    const { workspace, enterpriseId, org } = await importOrgWide("org-workspace", `E${kind}ORG1`);
    const own = await importInstall(workspace.teamId, {
      metadata: { team_id: workspace.teamId, enterprise_id: enterpriseId },
    });
    await uninstall(workspace.teamId);
    // The workspace's event also names the org (enterprise_id): its own connection is the installation.
    expect((await connectionOf(own)).status).toBe("needs_reauth");
    expect((await connectionOf(org)).status).toBe("active");
    await uninstall(enterpriseId);
    expect(await connectionOf(org)).toMatchObject({ status: "needs_reauth", reason: "app_uninstalled" });
  });

  it("an uninstall in another workspace of the org, one not stored here, leaves the org-wide install alone", async () => {
    const { enterpriseId, org } = await importOrgWide("org2-first", `E${kind}ORG2`);
    // A workspace of the same org with a workspace-level install tokenwarden does not hold.
    const other = h.emu.control.createTeam({ name: "org2-other", enterpriseId });
    h.emu.control.install({ clientId: h.emu.demoApp.clientId, teamId: other.teamId });
    await uninstall(other.teamId);
    expect((await connectionOf(org)).status).toBe("active");
  });
  /**
   * A new workspace's install, imported under a generated id with what the install flow records:
   * its team_id, and the bot user id that tokens_revoked names.
   */
  const importAsInstalled = async (name: string) => {
    const team = h.emu.control.createTeam({ name });
    const install = h.emu.control.install({ clientId: h.emu.demoApp.clientId, teamId: team.teamId });
    const imported = await h.server.warden.connections.import({
      provider: "slack",
      credentials: { bot: botFromInstall(install, { bot_user_id: install.bot_user_id }) },
      metadata: { team_id: team.teamId, bot_user_id: install.bot_user_id },
    });
    return { team, id: imported.id };
  };

  /** POSTs a delivery's body to the server, signed as Slack signs it now. */
  const deliverSigned = (body: string) => {
    const ts = Math.floor(h.clock.now() / 1000);
    return fetch(eventsUrl(), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-slack-request-timestamp": String(ts),
        "x-slack-signature": signSlackRequest(h.emu.demoApp.signingSecret, ts, body),
      },
      body,
    });
  };

  it("an uninstall arrives as token_revoked first: its one needs_reauth says so, the connection's reason then reads app_uninstalled", async () => {
    const { team, id } = await importAsInstalled("reason-after-uninstall");
    const heard: Array<{ kind: string | null; reason: string }> = [];
    const listener = (e: { connectionId: string; kind: string | null; reason: string }) => {
      if (e.connectionId === id) heard.push({ kind: e.kind, reason: e.reason });
    };
    h.server.warden.on("needs_reauth", listener);
    // The emulator sends both at once; delivered here one after the other, in Slack's usual order.
    h.emu.control.setEventsUrl(h.emu.demoApp.clientId, null);
    try {
      h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: team.teamId });
      const sent = (await h.emu.control.flushEvents()).filter((d) => d.teamId === team.teamId);
      expect(sent.map((d) => d.type)).toEqual(["tokens_revoked", "app_uninstalled"]);
      for (const d of sent) expect((await deliverSigned(d.body)).status).toBe(200);
    } finally {
      h.emu.control.setEventsUrl(h.emu.demoApp.clientId, eventsUrl());
      h.server.warden.off("needs_reauth", listener);
    }
    // One emission per episode: the first event started it and named it.
    expect(heard).toEqual([{ kind: "bot", reason: "token_revoked" }]);
    const log = await h.server.warden.connections.events(id);
    expect(log.filter((e) => e.type === "needs_reauth").map((e) => e.reason)).toEqual(["token_revoked"]);
    await h.server.dispatcher?.drain();
    const hooks = receiver.received
      .map((w) => JSON.parse(w.body) as { type: string; data: { connection_id: string; reason: string } })
      .filter((w) => w.data.connection_id === id);
    expect(hooks.map((w) => [w.type, w.data.reason])).toEqual([["connection.needs_reauth", "token_revoked"]]);
    // The connection, read afterwards, says what happened.
    const connection = await connectionOf(id);
    expect(connection).toMatchObject({ status: "needs_reauth", reason: "app_uninstalled" });
    expect(connection.credentials.map((c) => [c.kind, c.reason])).toEqual([["bot", "app_uninstalled"]]);
  });

  it("a tokens_revoked that arrives after app_uninstalled leaves the reason app_uninstalled", async () => {
    const { team, id } = await importAsInstalled("revoked-after-uninstall");
    h.emu.control.setEventsUrl(h.emu.demoApp.clientId, null);
    try {
      h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: team.teamId });
      const sent = (await h.emu.control.flushEvents()).filter((d) => d.teamId === team.teamId);
      for (const d of [...sent].reverse()) expect((await deliverSigned(d.body)).status).toBe(200);
    } finally {
      h.emu.control.setEventsUrl(h.emu.demoApp.clientId, eventsUrl());
    }
    const connection = await connectionOf(id);
    expect(connection).toMatchObject({ status: "needs_reauth", reason: "app_uninstalled" });
    expect(connection.credentials.map((c) => [c.kind, c.reason])).toEqual([["bot", "app_uninstalled"]]);
  });
});
