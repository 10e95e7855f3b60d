// `tokenwarden connections import` of what Bolt's InstallationStore saved (the real @slack/oauth
// InstallProvider against the emulator), as a user runs it: the built binary on SQLite and on
// PostgreSQL, then `tokenwarden serve`'s events route on the same store, then `diagnose connection`.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { startServer } from "../../src/server/start-server.js";
import { boltInstall } from "../helpers/bolt-installation.js";
import { createPgSchema, type PgSchema, TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { ensureBuilt, runCli } from "./built-cli.js";

type Json = Record<string, unknown>;

let emu: SlackEmulator;
let dir: string;

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-cli-import-bolt-"));
}, 120_000);
afterAll(async () => {
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.each(STORE_KINDS)("connections import of an @slack/oauth export (%s)", (kind) => {
  let pg: PgSchema | null = null;
  const key = randomBytes(32).toString("base64");
  const sqlitePath = () => join(dir, `${kind}.db`);
  const env = (): Record<string, string> => ({
    TOKENWARDEN_DATABASE_URL:
      pg === null ? `sqlite:${sqlitePath()}` : `${TEST_POSTGRES_URL}?schema=${pg.schema}`,
    TOKENWARDEN_ENCRYPTION_KEY: key,
    SLACK_CLIENT_ID: emu.demoApp.clientId,
    SLACK_CLIENT_SECRET: emu.demoApp.clientSecret,
    SLACK_BASE_URL: emu.url,
  });
  beforeAll(async () => {
    if (kind === "postgres") pg = await createPgSchema("import-bolt");
  });
  afterAll(async () => {
    await pg?.drop();
  });

  /** Slack's events for an uninstall, delivered to a `tokenwarden serve` on this store. */
  async function uninstallWhileServing(teamOrEnterpriseId: string): Promise<void> {
    const server = await startServer({
      env: {
        ...env(),
        SLACK_SIGNING_SECRET: emu.demoApp.signingSecret,
        TOKENWARDEN_API_KEY: "tw_test_key_0123456789abcdef",
      },
      port: 0,
      database: pg === null ? `sqlite:${sqlitePath()}` : TEST_POSTGRES_URL,
      ...(pg === null ? {} : { schema: pg.schema }),
      httpLog: false,
      healthChecks: false,
      refresher: false,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    try {
      emu.control.setEventsUrl(emu.demoApp.clientId, `${server.url}/slack/events`);
      emu.control.uninstall({ clientId: emu.demoApp.clientId, teamId: teamOrEnterpriseId });
      const sent = (await emu.control.flushEvents()).filter((d) => d.teamId === teamOrEnterpriseId);
      expect(sent.map((d) => d.state)).toEqual(["delivered", "delivered"]);
    } finally {
      emu.control.setEventsUrl(emu.demoApp.clientId, null);
      await server.close();
    }
  }

  it("stores each installation as the install flow would; an uninstall then reads as one in diagnose", async () => {
    const org = `E${kind.toUpperCase()}CLI`;
    const team = emu.control.createTeam({ name: "Acme", enterpriseId: org, enterpriseName: "Acme Org" });
    const member = emu.control.createUser(team.teamId).userId;
    const now = Date.now();
    const workspaceInstall = await boltInstall(emu, { teamId: team.teamId, nowMs: now });
    const orgInstall = await boltInstall(emu, { teamId: team.teamId, enterpriseInstall: true, nowMs: now });
    const exported = [workspaceInstall, orgInstall];
    const botUserOf = (i: Json) => (i["bot"] as Json)["userId"];
    const file = join(dir, `${kind}-installations.json`);
    await writeFile(file, JSON.stringify(exported));

    const imported = await runCli(["connections", "import", file, "--json"], { env: env() });
    expect(imported.stderr).toBe("");
    expect(imported.code).toBe(0);
    const metadataOf = async (id: string) => {
      const shown = await runCli(["connections", "show", id, "--json"], { env: env() });
      expect(shown.code).toBe(0);
      return (JSON.parse(shown.stdout) as Json)["metadata"];
    };
    const common = {
      enterprise_id: org,
      enterprise_name: "Acme Org",
      app_id: emu.demoApp.appId,
      authed_user_id: member,
    };
    expect(await metadataOf(team.teamId)).toEqual({
      ...common,
      team_id: team.teamId,
      team_name: "Acme",
      is_enterprise_install: false,
      bot_user_id: botUserOf(workspaceInstall),
    });
    expect(await metadataOf(org)).toEqual({
      ...common,
      team_id: null,
      team_name: null,
      is_enterprise_install: true,
      bot_user_id: botUserOf(orgInstall),
    });

    // The workspace's uninstall reaches its connection, and only it: the org-wide install is another.
    await uninstallWhileServing(team.teamId);
    const diagnose = async (id: string) => {
      const r = await runCli(["diagnose", "connection", id, "--json"], { env: env() });
      return JSON.parse(r.stdout) as { verdict: string; causes: Array<{ code: string }> };
    };
    const ws = await diagnose(team.teamId);
    expect(ws.causes[0]?.code).toBe("app_uninstalled");
    expect((await diagnose(org)).causes.map((c) => c.code)).not.toContain("app_uninstalled");
    await uninstallWhileServing(org);
    expect((await diagnose(org)).causes[0]?.code).toBe("app_uninstalled");
  }, 60_000);
});

describe("connections import of our forms with a camelCase twin of a key tokenwarden reads", () => {
  it("imports the entry as given and warns on stderr, naming the key and the one read", async () => {
    const team = emu.control.createTeam({ name: "Twins" });
    const install = emu.control.install({ clientId: emu.demoApp.clientId, teamId: team.teamId });
    const entry = {
      id: "acme-twins",
      provider: "slack",
      credentials: {
        bot: { access_token: install.access_token, refresh_token: install.refresh_token, expires_in: 43_200 },
      },
      metadata: { teamId: team.teamId },
    };
    const env = {
      TOKENWARDEN_DATABASE_URL: `sqlite:${join(dir, "twins.db")}`,
      TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      SLACK_CLIENT_ID: emu.demoApp.clientId,
      SLACK_CLIENT_SECRET: emu.demoApp.clientSecret,
      SLACK_BASE_URL: emu.url,
    };
    const r = await runCli(["connections", "import", "-", "--json"], { env, input: JSON.stringify(entry) });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      "tokenwarden: warning: metadata.teamId: stored as given, but tokenwarden reads team_id: Slack's events and a plain reinstall find a connection under an id of your own by it\n",
    );
    expect((JSON.parse(r.stdout) as Json[])[0]?.["metadata"]).toEqual({ teamId: team.teamId });
  });
});
