// An @slack/oauth Installation imported with `connections import` must be the connection the install
// flow would have made for the same install: the same metadata keys and provider data, so Slack's
// events, a plain "Add to Slack" reinstall and a reconnect treat it as one installed here.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseImportFile, SLACK_KINDS } from "../../src/cli/import-file.js";
import type { Store } from "../../src/core/ports.js";
import type { Connection } from "../../src/core/types.js";
import { boltInstall } from "../helpers/bolt-installation.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";
import {
  hop,
  installViaBrowser,
  openServerHarness,
  postSlackEvent,
  type ServerHarness,
} from "./server-harness.js";

/** The fields of an @slack/oauth Installation these tests read. */
type BoltJson = { user: { id: string }; bot: { userId: string; id: string } };

describe.each(STORE_KINDS)("an imported @slack/oauth installation (%s)", (kind) => {
  let h: ServerHarness;
  let store: Store;
  beforeAll(async () => {
    // A bot and a user token, as many Bolt apps ask for.
    h = await openServerHarness(kind, { env: { TOKENWARDEN_SLACK_USER_SCOPES: "users:read" } });
    h.emu.control.setEventsUrl(h.emu.demoApp.clientId, `${h.server.url}/slack/events`);
    store = await openSealedStore(
      kind,
      h.schema ?? h.database.slice("sqlite:".length),
      h.env["TOKENWARDEN_ENCRYPTION_KEY"] ?? "",
    );
  });
  afterAll(async () => {
    await store?.close();
    await h?.close();
  });

  const connection = (id: string) => h.server.warden.connections.get(id);
  const providerData = (c: Connection) =>
    Object.fromEntries(c.credentials.map((k) => [k.kind, k.providerData]));

  /** A new workspace (of org `enterpriseId`) with a member, who installs whatever is installed there. */
  function newTeam(name: string, enterprise?: { enterpriseId: string; enterpriseName?: string }) {
    const team = h.emu.control.createTeam({ name, ...enterprise });
    h.emu.control.createUser(team.teamId);
    return team;
  }

  /**
   * `connections import FILE` of what Bolt's InstallationStore saved for an install of the demo app
   * into `teamId` (org-wide with `org`) with a bot and a user token; the connection and the Installation.
   */
  async function importBolt(teamId: string, org = false) {
    const installation = await boltInstall(h.emu, { teamId, enterpriseInstall: org, nowMs: h.clock.now() });
    const [input] = parseImportFile(JSON.stringify([installation]), {
      targets: { slack: SLACK_KINDS },
      nowMs: h.clock.now(),
    });
    if (input === undefined) throw new Error("nothing parsed");
    const imported = await h.server.warden.connections.import(input);
    return Object.assign(imported, { installation: installation as BoltJson });
  }

  /** A plain install (the app's "Add to Slack") into `teamId` through the browser; where it landed. */
  async function plainInstall(teamId: string, org = false): Promise<string> {
    h.emu.control.setAuthorize({ mode: "approve", teamId, enterpriseInstall: org });
    try {
      const back = await installViaBrowser(h, `${h.server.publicUrl}/oauth/slack/install`);
      expect(back.status).toBe(303);
      return new URL(back.headers.get("location") ?? "").searchParams.get("connection_id") ?? "";
    } finally {
      h.emu.control.setAuthorize({ teamId: null, userId: null, enterpriseInstall: false });
    }
  }

  /** Uninstalls the demo app from a workspace or org; the bodies of Slack's tokens_revoked and app_uninstalled. */
  async function uninstallUndelivered(teamOrEnterpriseId: string): Promise<[string, string]> {
    h.emu.control.setEventsUrl(h.emu.demoApp.clientId, null);
    try {
      h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: teamOrEnterpriseId });
      const sent = (await h.emu.control.flushEvents()).filter((d) => d.teamId === teamOrEnterpriseId);
      expect(sent.map((d) => d.type)).toEqual(["tokens_revoked", "app_uninstalled"]);
      return [sent[0]?.body ?? "", sent[1]?.body ?? ""];
    } finally {
      h.emu.control.setEventsUrl(h.emu.demoApp.clientId, `${h.server.url}/slack/events`);
    }
  }

  /** Uninstalls the demo app from a workspace or org and waits until Slack's events were delivered. */
  async function uninstall(teamOrEnterpriseId: string): Promise<void> {
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: teamOrEnterpriseId });
    const sent = (await h.emu.control.flushEvents()).filter((d) => d.teamId === teamOrEnterpriseId);
    expect(sent.map((d) => [d.type, d.state]).sort()).toEqual([
      ["app_uninstalled", "delivered"],
      ["tokens_revoked", "delivered"],
    ]);
  }

  it("a workspace install gets the install flow's metadata and provider data", async () => {
    const installed = newTeam("installed here");
    const viaFlow = await connection(await plainInstall(installed.teamId));
    const team = newTeam("Acme");
    const imported = await importBolt(team.teamId);
    const userId = imported.installation.user.id;
    const botUserId = imported.installation.bot.userId;
    expect(imported.id).toBe(team.teamId);
    expect(imported.metadata).toEqual({
      team_id: team.teamId,
      team_name: "Acme",
      enterprise_id: null,
      enterprise_name: null,
      is_enterprise_install: false,
      app_id: h.emu.demoApp.appId,
      authed_user_id: userId,
      bot_user_id: botUserId,
    });
    expect(Object.keys(imported.metadata).sort()).toEqual(Object.keys(viaFlow.metadata).sort());
    expect(providerData(imported)).toMatchObject({
      bot: { bot_user_id: botUserId, bot_id: imported.installation.bot.id },
      user: { user_id: userId },
    });
    // The install flow's provider data, but the client id: an export does not say which app's client
    // issued its tokens (the first refresh records it).
    const flowKeys = (c: Connection) =>
      Object.fromEntries(
        Object.entries(providerData(c)).map(([k, v]) => [k, Object.keys(v).filter((x) => x !== "client_id")]),
      );
    expect(flowKeys(viaFlow)).toEqual({ bot: ["bot_user_id"], user: ["user_id"] });
    for (const [kind, keys] of Object.entries(flowKeys(viaFlow)))
      expect(Object.keys(providerData(imported)[kind] ?? {})).toEqual(expect.arrayContaining(keys));
  });

  it("an org-wide install gets the install flow's metadata: the org, no workspace of its own", async () => {
    const viaFlowOrg = `E${kind.toUpperCase()}FLOW`;
    const flowWorkspace = newTeam("flow ws", { enterpriseId: viaFlowOrg });
    const viaFlow = await connection(await plainInstall(flowWorkspace.teamId, true));
    expect(viaFlow.id).toBe(viaFlowOrg);
    const org = `E${kind.toUpperCase()}BOLT`;
    const workspace = newTeam("bolt ws", { enterpriseId: org, enterpriseName: "Bolt Org" });
    const imported = await importBolt(workspace.teamId, true);
    expect(imported.id).toBe(org);
    expect(imported.metadata).toMatchObject({
      team_id: null,
      team_name: null,
      enterprise_id: org,
      enterprise_name: "Bolt Org",
      is_enterprise_install: true,
    });
    expect(Object.keys(imported.metadata).sort()).toEqual(Object.keys(viaFlow.metadata).sort());
    // A health check (auth.test names the org as the token's team) finds nothing missing to fill in.
    expect((await h.server.warden.connections.check(org)).status).toBe("active");
    expect((await connection(org)).metadata).toEqual(imported.metadata);
  });

  it("both stores find an imported installation by what its metadata names", async () => {
    const org = `E${kind.toUpperCase()}FIND`;
    const workspace = newTeam("find ws", { enterpriseId: org });
    await importBolt(workspace.teamId);
    await importBolt(workspace.teamId, true);
    const find = (q: { teamId?: string; enterpriseId?: string }) =>
      store.findConnectionsByInstallation({ provider: "slack", limit: 10, ...q });
    expect(await find({ teamId: workspace.teamId })).toEqual([workspace.teamId]);
    // The org-wide install, not the workspace of the org that has an install of its own.
    expect(await find({ enterpriseId: org })).toEqual([org]);
  });

  it("Slack's events reach it: tokens_revoked, then app_uninstalled, for a workspace and for an org", async () => {
    const org = `E${kind.toUpperCase()}EVT`;
    const workspace = newTeam("events ws", { enterpriseId: org });
    const ws = await importBolt(workspace.teamId);
    const orgWide = await importBolt(workspace.teamId, true);
    const reasons = async (id: string) =>
      Object.fromEntries((await connection(id)).credentials.map((c) => [c.kind, [c.status, c.reason]]));
    for (const [installation, id] of [
      [workspace.teamId, ws.id],
      [org, orgWide.id],
    ] as const) {
      const [revoked, uninstalled] = await uninstallUndelivered(installation);
      // tokens_revoked names the bot user and the member: each credential hears it.
      expect((await postSlackEvent(h, revoked)).statusCode).toBe(200);
      expect(await reasons(id)).toEqual({
        bot: ["needs_reauth", "token_revoked"],
        user: ["needs_reauth", "token_revoked"],
      });
      expect((await postSlackEvent(h, uninstalled)).statusCode).toBe(200);
      expect(await connection(id)).toMatchObject({ status: "needs_reauth", reason: "app_uninstalled" });
      // The workspace's events also name its org: the org-wide install is another installation.
      if (id === ws.id) expect((await connection(orgWide.id)).status).toBe("active");
    }
  });

  it("a plain reinstall reconnects it and leaves exactly the install flow's metadata", async () => {
    const team = newTeam("reinstalled");
    const imported = await importBolt(team.teamId);
    await uninstall(team.teamId);
    expect((await connection(imported.id)).status).toBe("needs_reauth");
    expect(await plainInstall(team.teamId)).toBe(imported.id);
    const back = await connection(imported.id);
    expect(back.status).toBe("active");
    expect(Object.keys(back.metadata).sort()).toEqual(Object.keys(imported.metadata).sort());
    expect(back.metadata).toMatchObject({ team_id: team.teamId, team_name: "reinstalled" });
  });

  it("a reconnect into another workspace is refused as the wrong workspace, not an unknown one", async () => {
    const mine = newTeam("mine");
    const other = newTeam("other");
    const imported = await importBolt(mine.teamId);
    h.emu.control.setAuthorize({ mode: "approve", teamId: other.teamId });
    try {
      const start = await hop(`${h.server.publicUrl}/oauth/slack/install?connection_id=${imported.id}`);
      // The `team` hint only preselects: the person can pick another workspace in Slack.
      const authorize = new URL(start.headers.get("location") ?? "");
      authorize.searchParams.delete("team");
      const consent = await hop(authorize.toString());
      const page = await hop(consent.headers.get("location") ?? "");
      expect(page.status).toBe(400);
      const text = await page.text();
      expect(text).toContain("different workspace");
      expect(text).not.toContain("not known");
    } finally {
      h.emu.control.setAuthorize({ teamId: null });
    }
    expect((await connection(imported.id)).metadata).toEqual(imported.metadata);
  });
});
