// The CLI as a user runs it: the built binary in a child process, against the emulator and a
// real SQLite file (and PostgreSQL for migrate / list). Few processes: each costs ~0.3 s.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseKeyRing } from "../../src/crypto/key-ring.js";
import { ReconnectLinkSigner } from "../../src/crypto/reconnect-link.js";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import { ensureBuilt, runCli } from "./built-cli.js";
import { cliEnv, installWorkspace } from "./cli-fixtures.js";

let emu: SlackEmulator;
let dir: string;
let env: Record<string, string>;
const key = randomBytes(32).toString("base64");

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-cli-"));
  env = cliEnv(emu, join(dir, "tw.db"), key);
}, 120_000);
afterAll(async () => {
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const install = (botScopes?: string[]) => installWorkspace(emu, botScopes);

/** A workspace imported into a SQLite file of its own: the env pointing at it, the tokens, the id. */
async function importIntoOwnStore(file: string, idPrefix: string) {
  const stored = { ...env, TOKENWARDEN_DATABASE_URL: `sqlite:${join(dir, file)}` };
  const t = install();
  const id = `${idPrefix}-${t.teamId}`;
  const input = JSON.stringify({
    id,
    provider: "slack",
    credentials: { bot: { access_token: t.bot, refresh_token: t.refresh, expires_in: 43_200 } },
  });
  expect((await runCli(["connections", "import", "-"], { env: stored, input })).code).toBe(0);
  return { stored, t, id };
}

const oneLine = (s: string) => s.trim().split("\n").length === 1;

describe("tokenwarden CLI (built binary)", () => {
  it("--help lists every command with exit codes and an example", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const c of ["diagnose", "connections", "keys", "migrate", "emulator"]) expect(r.stdout).toContain(c);
    expect(r.stdout).toMatch(/Exit codes: 0 ok, 1 .*, 2 bad usage/);
    const sub = await runCli(["connections", "import", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/Example:\n\s+\$ tokenwarden connections import/);
    expect(sub.stdout).toContain("epoch SECONDS");
  });

  it("bad usage exits 2 with one line and no stack trace", async () => {
    const noToken = await runCli(["diagnose", "token"], { env });
    expect(noToken.code).toBe(2);
    expect(oneLine(noToken.stderr)).toBe(true);
    expect(noToken.stderr).toMatch(/^tokenwarden: no token/);
    expect(noToken.stderr).not.toMatch(/\bat .*\.js:\d+/);

    const unknown = await runCli(["connections", "list", "--colour"], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("tokenwarden: unknown option '--colour' (run with --help for usage)\n");

    const suggested = await runCli(["connections", "lst"], { env });
    expect(suggested.code).toBe(2);
    expect(suggested.stderr).toBe(
      "tokenwarden: unknown command 'lst' (Did you mean list?) (run with --help for usage)\n",
    );

    const missing = await runCli(["connections", "show"], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("tokenwarden: missing required argument 'id' (run with --help for usage)\n");

    const badStatus = await runCli(["connections", "list", "--status", "dead"], { env });
    expect(badStatus.code).toBe(2);
    expect(badStatus.stderr).toContain("--status must be one of active, refresh_failing, needs_reauth");
    expect(badStatus.stderr).toMatch(/^tokenwarden: /);
    expect(oneLine(badStatus.stderr)).toBe(true);
  });

  it("diagnose token --json via stdin: the exact schema, exit 1, the token never printed", async () => {
    const t = install();
    emu.control.revokeToken(t.bot);
    const r = await runCli(["diagnose", "token", "-", "--json"], { env, input: `${t.bot}\n` });
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(d)).toEqual(["verdict", "refreshable", "error", "token", "causes", "fix"]);
    expect(d).toMatchObject({
      verdict: "revoked",
      refreshable: false,
      error: "token_revoked",
      token: { kind: "bot", rotating: true },
    });
    expect((d["causes"] as Array<{ code: string }>)[0]?.code).toBe("admin_revoked");
    expect(r.stdout + r.stderr).not.toContain(t.bot);
  });

  it("diagnose token --token-env: healthy in sentences with a fingerprint, exit 0", async () => {
    const t = install();
    const r = await runCli(["diagnose", "token", "--token-env", "MY_TOKEN", "--slack-base-url", emu.url], {
      env: { MY_TOKEN: t.bot },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Diagnosis of token xoxe\.xoxb-…[\w-]{4} \(sha256:[0-9a-f]{8}\)/);
    expect(r.stdout).toContain("Verdict: HEALTHY");
    expect(r.stdout).not.toContain(t.bot);
  });

  it("diagnose token with a refresh token: unchecked without --refresh; --refresh prints the new pair", async () => {
    const t = install();
    const before = emu.control.counters().maxPresentations;
    const unchecked = await runCli(["diagnose", "token", "--token-env", "RT", "--json"], {
      env: { ...env, RT: t.refresh },
    });
    expect(unchecked.code).toBe(0);
    expect(JSON.parse(unchecked.stdout)).toMatchObject({ verdict: "unchecked", token: { kind: "refresh" } });
    expect(emu.control.counters().refreshTokenPresentations[t.refresh] ?? 0).toBe(0);
    expect(emu.control.counters().maxPresentations).toBe(before);

    // In a directory with no tokenwarden.db and no store configured: nothing stored to protect.
    const spent = await runCli(["diagnose", "token", "--token-env", "RT", "--refresh"], {
      cwd: dir,
      env: {
        RT: t.refresh,
        SLACK_BASE_URL: emu.url,
        SLACK_CLIENT_ID: emu.demoApp.clientId,
        SLACK_CLIENT_SECRET: emu.demoApp.clientSecret,
      },
    });
    expect(spent.code).toBe(0);
    expect(spent.stderr).toMatch(/WARNING: the refresh token was spent/);
    expect(spent.stdout).toMatch(/NEW TOKENS[\s\S]*access token: {2}xoxe\.xoxb-\S+\nrefresh token: xoxe-\S+/);
    // The fix points at where the pair is, in text and in JSON (the block prints before the diagnosis).
    expect(spent.stdout).toContain(
      "printed with this diagnosis (the NEW TOKENS block; new_tokens with --json)",
    );
    expect(emu.control.counters().refreshTokenPresentations[t.refresh]).toBe(1);
  });

  it("diagnose token --refresh with a store: a previous refresh token is not spent again", async () => {
    const { stored, t, id } = await importIntoOwnStore("diagnose-previous.db", "prev");
    expect((await runCli(["connections", "refresh", id], { env: stored })).code).toBe(0);
    const spentOnce = emu.control.counters().refreshTokenPresentations[t.refresh];
    expect(spentOnce).toBe(1);

    const r = await runCli(["diagnose", "token", "--token-env", "RT", "--refresh"], {
      env: { ...stored, RT: t.refresh },
    });
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(true);
    expect(r.stderr).toMatch(/^tokenwarden: not spent: .*Nothing was sent to Slack.*--spend-unknown\n$/);
    expect(r.stdout).toBe("");
    expect(r.stderr).not.toContain(t.refresh);
    expect(emu.control.counters().refreshTokenPresentations[t.refresh]).toBe(spentOnce);
    // The connection's current pair is untouched.
    expect((await runCli(["connections", "check", id], { env: stored })).code).toBe(0);
  });

  it("diagnose token --refresh of a token tokenwarden holds as dead: not sent, and not called Slack's answer", async () => {
    const { stored, t, id } = await importIntoOwnStore("diagnose-dead.db", "dead");
    emu.control.uninstall({ clientId: emu.demoApp.clientId, teamId: t.teamId });
    expect((await runCli(["connections", "check", id], { env: stored })).code).toBe(1);

    const r = await runCli(["diagnose", "token", "--token-env", "RT", "--refresh"], {
      env: { ...stored, RT: t.refresh },
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("not sent to Slack: tokenwarden has this credential marked needs_reauth");
    expect(r.stdout).not.toContain("Slack said:");
    expect(r.stdout).toMatch(/marked dead: needs_reauth, reason \w+ since \d{4}-/);
    expect(r.stdout).toContain("Nothing was sent to Slack now");
    expect(r.stdout).toContain(`/oauth/slack/install?connection_id=${id}`);
    expect(r.stdout + r.stderr).not.toContain(t.refresh);
    expect(emu.control.counters().refreshTokenPresentations[t.refresh] ?? 0).toBe(0);
  });

  it("diagnose app: wrong secret → exit 1, misconfigured", async () => {
    const r = await runCli(
      ["diagnose", "app", "--client-id", emu.demoApp.clientId, "--client-secret", "0".repeat(32), "--json"],
      {
        env: { SLACK_BASE_URL: emu.url },
      },
    );
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ verdict: "misconfigured", error: "bad_client_secret" });
  });

  it("connections import of @slack/oauth installations, then list, show, refresh, diagnose, delete (SQLite)", async () => {
    const a = install();
    const b = install();
    const installation = (t: ReturnType<typeof install>) => ({
      team: { id: t.teamId, name: "Acme" },
      enterprise: undefined,
      bot: {
        token: t.bot,
        refreshToken: t.refresh,
        expiresAt: Math.floor(Date.now() / 1000) + 43_200, // epoch SECONDS, as @slack/oauth stores it
        scopes: ["chat:write"],
        id: "B1",
        userId: "U1",
      },
      user: { token: undefined, scopes: undefined, id: t.userId },
      isEnterpriseInstall: false,
      authVersion: "v2",
    });
    const file = join(dir, "installations.json");
    await writeFile(file, JSON.stringify([installation(a), installation(b)]));
    const imported = await runCli(["connections", "import", file], { env });
    expect(imported.stderr).toBe("");
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain("imported 2 connection(s)");

    const list = await runCli(["connections", "list", "--json"], { env });
    expect(list.code).toBe(0);
    const rows = JSON.parse(list.stdout) as Array<{
      id: string;
      status: string;
      credentials: Array<{ expires_at: string }>;
    }>;
    expect(rows.map((r) => r.id).sort()).toEqual([a.teamId, b.teamId].sort());
    const expiresMs = Date.parse(rows[0]?.credentials[0]?.expires_at ?? "");
    expect(Math.abs(expiresMs - (Date.now() + 43_200_000))).toBeLessThan(120_000);

    const show = await runCli(["connections", "show", a.teamId], { env });
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/KIND\s+STATUS/);
    expect(show.stdout).toContain("imported, rotating");

    const refreshed = await runCli(["connections", "refresh", "--all", "--json"], { env });
    expect(refreshed.code).toBe(0);
    const refreshedRows = JSON.parse(refreshed.stdout) as Array<{ id: string; refreshed: boolean }>;
    expect(refreshedRows.every((r) => r.refreshed)).toBe(true);
    // Worked on at once, reported in the list's order.
    expect(refreshedRows.map((r) => r.id)).toEqual(rows.map((r) => r.id));
    const checked = await runCli(["connections", "check", "--all", "--concurrency", "1", "--json"], { env });
    expect(checked.code).toBe(0);
    expect((JSON.parse(checked.stdout) as Array<{ id: string }>).map((r) => r.id)).toEqual(
      rows.map((r) => r.id),
    );
    const zero = await runCli(["connections", "check", "--all", "--concurrency", "0"], { env });
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain("--concurrency must be an integer from 1 to 32");

    emu.control.uninstall({ clientId: emu.demoApp.clientId, teamId: a.teamId });
    const check = await runCli(["connections", "check", a.teamId], { env });
    expect(check.code).toBe(1);
    const diag = await runCli(["diagnose", "connection", a.teamId], { env });
    expect(diag.code).toBe(1);
    expect(diag.stdout).toContain("Verdict: INACTIVE");
    expect(diag.stdout).toMatch(
      /What happened \(oldest first\):[\s\S]*health check failed: account_inactive/,
    );
    expect(diag.stdout).toMatch(/1\. \[high\] app_uninstalled/);
    expect(diag.stdout).toContain(`with tokenwarden serve: /oauth/slack/install?connection_id=${a.teamId}`);
    // Where the server is known, the fix names the connection's signed link, as a 409 answer does.
    const linked = await runCli(["diagnose", "connection", a.teamId], {
      env: { ...env, TOKENWARDEN_PUBLIC_URL: "https://tw.example.com" },
    });
    const sig = ReconnectLinkSigner.fromKeyRing(parseKeyRing(env["TOKENWARDEN_ENCRYPTION_KEY"] ?? "")).sign(
      "slack",
      a.teamId,
    );
    expect(linked.stdout).toContain(
      `its reconnect link: https://tw.example.com/oauth/slack/install?connection_id=${a.teamId}&sig=${sig}`,
    );

    const all = `${list.stdout}${show.stdout}${refreshed.stdout}${diag.stdout}`;
    for (const secret of [a.bot, a.refresh, b.bot, b.refresh]) expect(all).not.toContain(secret);

    expect((await runCli(["connections", "delete", b.teamId], { env })).code).toBe(2);
    const del = await runCli(["connections", "delete", b.teamId, "--yes"], { env });
    expect(del.code).toBe(0);
    expect((await runCli(["connections", "show", b.teamId], { env })).code).toBe(1);
  });

  it("connections import with one bad entry: exit 2, the field named, no token echoed, nothing imported", async () => {
    const t = install();
    const input = JSON.stringify([
      {
        id: "good-one",
        provider: "slack",
        credentials: { bot: { access_token: t.bot, refresh_token: t.refresh, expires_in: 43200 } },
      },
      {
        id: "bad-one",
        provider: "slack",
        credentials: { bot: { access_token: 42, refresh_token: t.refresh } },
      },
    ]);
    const r = await runCli(["connections", "import", "-"], { env, input });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tokenwarden: \[1\]\.credentials\.bot\.access_token: /);
    expect(oneLine(r.stderr)).toBe(true);
    expect(r.stderr).not.toContain(t.refresh);
    expect((await runCli(["connections", "show", "good-one"], { env })).code).toBe(1);
  });

  it("keys generate, then keys rotate re-encrypts under the new first key", async () => {
    const gen = await runCli(["keys", "generate", "--id", "k2"]);
    expect(gen.code).toBe(0);
    expect(gen.stdout.trim()).toMatch(/^k2:[A-Za-z0-9+/]{43}=$/);
    const rotated = await runCli(["keys", "rotate", "--json"], {
      env: { ...env, TOKENWARDEN_ENCRYPTION_KEY: `${gen.stdout.trim()},${key}` },
    });
    expect(rotated.stderr).toBe("");
    expect(rotated.code).toBe(0);
    expect((JSON.parse(rotated.stdout) as { resealed: number }).resealed).toBeGreaterThan(0);
    // The old key alone can no longer read them; the new one can.
    expect(
      (
        await runCli(["connections", "list"], {
          env: { ...env, TOKENWARDEN_ENCRYPTION_KEY: gen.stdout.trim() },
        })
      ).code,
    ).toBe(0);
  });

  it("migrate and connections list on PostgreSQL", async () => {
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    const db = `tw_cli_${randomBytes(6).toString("hex")}`;
    await admin.query(`CREATE DATABASE ${db}`);
    try {
      const url = new URL(TEST_POSTGRES_URL);
      url.pathname = `/${db}`;
      const pgEnv = { ...env, TOKENWARDEN_DATABASE_URL: url.toString() };
      const migrated = await runCli(["migrate"], { env: pgEnv });
      expect(migrated.stderr).toBe("");
      expect(migrated.code).toBe(0);
      // A new database: every migration applied, named in order.
      expect(migrated.stdout).toMatch(
        /^applied 0001_init, 0002_outbox, .*; schema up to date: postgres:\/\//,
      );
      const again = await runCli(["migrate", "--json"], { env: pgEnv });
      expect(JSON.parse(again.stdout)).toMatchObject({ migrated: true, applied: [], newer: [] });
      // A newer release migrated the database (a rollback): not "up to date", and said so.
      const dbAdmin = new pg.Client({ connectionString: url.toString() });
      await dbAdmin.connect();
      await dbAdmin.query(
        "INSERT INTO tokenwarden.schema_migrations (version, name) VALUES (99, 'from_the_future')",
      );
      await dbAdmin.end();
      const behind = await runCli(["migrate"], { env: pgEnv });
      expect(behind.code).toBe(0);
      expect(behind.stderr).toContain("migrations this release does not know (0099_from_the_future)");
      expect(behind.stdout).toMatch(/^schema ahead of this release: postgres:\/\//);
      const behindJson = await runCli(["migrate", "--json"], { env: pgEnv });
      expect(JSON.parse(behindJson.stdout)).toMatchObject({ applied: [], newer: ["0099_from_the_future"] });
      const t = install();
      const input = JSON.stringify({
        id: "pg-1",
        provider: "slack",
        credentials: { bot: { accessToken: t.bot, refreshToken: t.refresh, expiresIn: 43200 } },
      });
      expect((await runCli(["connections", "import", "-"], { env: pgEnv, input })).code).toBe(0);
      const list = await runCli(["connections", "list"], { env: pgEnv });
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/^ID\s+PROVIDER\s+STATUS/);
      expect(list.stdout).toMatch(/pg-1\s+slack\s+active/);
      // A wrong key is refused, and the process exits (PostgreSQL's pool and listener are closed).
      const wrong = await runCli(["connections", "list"], {
        env: { ...pgEnv, TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64") },
        timeoutMs: 20_000,
      });
      expect(wrong.timedOut).toBe(false);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/^tokenwarden: no stored secret is sealed with a key/);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await admin.end();
    }
  });
});
