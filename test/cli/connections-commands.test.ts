// `connections import / check / refresh` as a user runs them (the built binary, a real SQLite file,
// the emulator over loopback): webhooks for what the CLI kills, all-or-nothing imports, and bulk
// runs that report each connection's failure and go on.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Provider } from "../../src/core/ports.js";
import { parseKeyRing } from "../../src/crypto/key-ring.js";
import { ReconnectLinkSigner } from "../../src/crypto/reconnect-link.js";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { createWarden } from "../../src/engine/warden.js";
import { ConnectionViewSchema } from "../../src/server/wire.js";
import { openSealedStore } from "../helpers/store-under-test.js";
import { ensureBuilt, runCli } from "./built-cli.js";
import { cliEnv, installWorkspace } from "./cli-fixtures.js";

let emu: SlackEmulator;
let dir: string;
const key = randomBytes(32).toString("base64");

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-cli-connections-"));
}, 120_000);
afterAll(async () => {
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A fresh SQLite file per test, and the environment pointing at it and the emulator. */
function freshEnv(name: string): { env: Record<string, string>; path: string } {
  const path = join(dir, `${name}.db`);
  return { path, env: cliEnv(emu, path, key) };
}

const install = () => installWorkspace(emu);

const snakeEntry = (id: string, t: ReturnType<typeof install>) => ({
  id,
  provider: "slack",
  credentials: { bot: { access_token: t.bot, refresh_token: t.refresh, expires_in: 43_200 } },
});

function rows<T>(path: string, sql: string): T[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

/** Another provider's connection in the same store, written by a library process that runs it. */
async function importForeignConnection(path: string, id: string): Promise<void> {
  const github = {
    id: "github",
    refresh: async () => {
      throw new Error("not called");
    },
    check: async () => ({ kind: "ok", providerData: {} }),
    revoke: async () => ({ kind: "ok", providerData: {} }),
    classifyApiError: () => ({ kind: "transient", reason: "provider_unavailable", error: "x" }),
  } as unknown as Provider;
  const lib = await createWarden({
    store: await openSealedStore("sqlite", path, key),
    extraProviders: [github],
    env: {},
    logger: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  try {
    await lib.connections.import({
      id,
      provider: "github",
      credentials: { default: { accessToken: "gho_not_for_slack", refreshToken: "ghr_x", expiresIn: 3_600 } },
    });
  } finally {
    await lib.close();
  }
}

describe("connections check marks a dead install, and the webhook goes to the outbox", () => {
  it("with TOKENWARDEN_WEBHOOK_URL set, a connection.needs_reauth row is written", async () => {
    const { env, path } = freshEnv("webhook");
    const hooked = {
      ...env,
      TOKENWARDEN_WEBHOOK_URL: "http://127.0.0.1:9/hooks",
      TOKENWARDEN_WEBHOOK_SECRET: "whsec_test_only",
    };
    const t = install();
    const imported = await runCli(["connections", "import", "-"], {
      env: hooked,
      input: JSON.stringify(snakeEntry(t.teamId, t)),
    });
    expect(imported.code).toBe(0);
    emu.control.uninstall({ clientId: emu.demoApp.clientId, teamId: t.teamId });
    const check = await runCli(["connections", "check", t.teamId, "--json"], { env: hooked });
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout)).toMatchObject([{ id: t.teamId, ok: false, status: "needs_reauth" }]);
    const outbox = rows<{ type: string; payload: string }>(path, "SELECT type, payload FROM outbox");
    const dead = outbox.filter((r) => r.type === "connection.needs_reauth");
    expect(dead).toHaveLength(1);
    // The row holds the webhook's data; the server's dispatcher wraps and signs it on delivery.
    expect(JSON.parse(dead[0]?.payload ?? "{}")).toMatchObject({
      connection_id: t.teamId,
      provider: "slack",
      reason: "account_inactive",
    });
    for (const r of outbox) {
      expect(r.payload).not.toContain(t.bot);
      expect(r.payload).not.toContain(t.refresh);
    }
  });
});

describe("TOKENWARDEN_PUBLIC_URL with a user name or password", () => {
  // It would be copied into every reconnect_url the command prints; the server refuses it at start.
  it("is a usage error naming the variable, never echoing the credentials", async () => {
    const { env } = freshEnv("public-url-creds");
    const r = await runCli(["connections", "list", "--json"], {
      env: { ...env, TOKENWARDEN_PUBLIC_URL: "https://u-name:p-word@tw.example.com" },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("TOKENWARDEN_PUBLIC_URL");
    expect(r.stderr).not.toContain("p-word");
    expect(r.stdout).not.toContain("p-word");
  });
});

describe("--json prints the HTTP API's shapes", () => {
  it("a connection as GET /v1/connections/:id returns it (reconnect_url too), its events as the events route, a refresh with expires_at", async () => {
    const { env } = freshEnv("json-shapes");
    const withUrl = { ...env, TOKENWARDEN_PUBLIC_URL: "https://tw.example.com/" };
    const live = install();
    const dead = install();
    for (const t of [live, dead]) {
      const r = await runCli(["connections", "import", "-"], {
        env,
        input: JSON.stringify(snakeEntry(t.teamId, t)),
      });
      expect(r.code).toBe(0);
    }
    emu.control.uninstall({ clientId: emu.demoApp.clientId, teamId: dead.teamId });
    expect((await runCli(["connections", "check", dead.teamId], { env })).code).toBe(1);

    const show = await runCli(["connections", "show", dead.teamId, "--json"], { env: withUrl });
    expect(show.code).toBe(0);
    const shown = JSON.parse(show.stdout) as Record<string, unknown> & { events: unknown[] };
    const { events, ...connection } = shown;
    // Strict: no field the API's view lacks (a camelCase leftover), none missing.
    expect(() => ConnectionViewSchema.strict().parse(connection)).not.toThrow();
    expect(connection).toMatchObject({
      id: dead.teamId,
      status: "needs_reauth",
      // Signed as the server signs it (same key ring), so the install route preselects the workspace.
      reconnect_url: `https://tw.example.com/oauth/slack/install?connection_id=${dead.teamId}&sig=${ReconnectLinkSigner.fromKeyRing(parseKeyRing(env["TOKENWARDEN_ENCRYPTION_KEY"] ?? "")).sign("slack", dead.teamId)}`,
      credentials: [{ kind: "bot", has_refresh_token: true, failure_count: 0 }],
    });
    // Newest first; the connection's status change, naming the credential, after that one's check.
    expect(events[0]).toMatchObject({ type: "needs_reauth", kind: "bot", reason: "account_inactive" });
    expect(events.at(-1)).toMatchObject({ type: "imported", kind: "bot", data: { rotating: true } });
    expect(Object.keys((events.at(-1) as { data: object }).data)).toContain("expires_at_ms");
    expect(Object.keys(events[0] as object).sort()).toEqual(["at", "data", "id", "kind", "reason", "type"]);

    // Without TOKENWARDEN_PUBLIC_URL the CLI cannot know the link: null, as the field says.
    const list = await runCli(["connections", "list", "--json"], { env });
    const listed = JSON.parse(list.stdout) as Array<Record<string, unknown>>;
    for (const c of listed) expect(() => ConnectionViewSchema.strict().parse(c)).not.toThrow();
    expect(listed.find((c) => c["id"] === dead.teamId)?.["reconnect_url"]).toBeNull();

    const refresh = await runCli(["connections", "refresh", live.teamId, "--json"], { env });
    expect(refresh.code).toBe(0);
    const [row] = JSON.parse(refresh.stdout) as Array<Record<string, unknown>>;
    expect(Object.keys(row ?? {}).sort()).toEqual([
      "error",
      "expires_at",
      "id",
      "kind",
      "message",
      "refreshed",
    ]);
    expect(Date.parse(String(row?.["expires_at"]))).toBeGreaterThan(Date.now());
    for (const out of [show.stdout, list.stdout, refresh.stdout]) {
      for (const secret of [live.bot, live.refresh, dead.bot, dead.refresh])
        expect(out).not.toContain(secret);
    }
  });
});

describe("connections import is all or nothing", () => {
  const foreign = {
    id: "gh-1",
    provider: "github",
    credentials: { default: { access_token: "gho_1", expires_in: 3_600 } },
  };

  it("an unconfigured provider after a good entry: exit 2, the entry named, nothing written", async () => {
    const { env } = freshEnv("import-provider");
    const t = install();
    const input = JSON.stringify([snakeEntry("first", t), foreign]);
    const r = await runCli(["connections", "import", "-"], { env, input });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'tokenwarden: [1].provider: "github" is not a provider this CLI can import into (configured: slack)\n',
    );
    expect((await runCli(["connections", "list", "--json"], { env })).stdout.trim()).toBe("[]");
  });

  it("a NUL in a later entry's metadata: exit 2, that entry and field named, nothing written", async () => {
    const { env } = freshEnv("import-nul");
    const good = snakeEntry("first", install());
    const bad = { ...snakeEntry("second", install()), metadata: { name: "a\u0000b" } };
    const r = await runCli(["connections", "import", "-"], { env, input: JSON.stringify([good, bad]) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[1]: metadata.name: must not contain NUL");
    expect((await runCli(["connections", "list", "--json"], { env })).stdout.trim()).toBe("[]");
  });

  it("--dry-run refuses what the import would refuse", async () => {
    const { env } = freshEnv("import-dry-run");
    const t = install();
    const input = JSON.stringify([snakeEntry("first", t), foreign]);
    const r = await runCli(["connections", "import", "-", "--dry-run"], { env, input });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tokenwarden: \[1\]\.provider: /);
    expect(r.stdout).toBe("");
  });

  it("a kind Slack does not hold: exit 2, nothing written", async () => {
    const { env } = freshEnv("import-kind");
    const t = install();
    const bad = { id: "second", provider: "slack", credentials: { default: { access_token: "xoxb-1" } } };
    const r = await runCli(["connections", "import", "-"], {
      env,
      input: JSON.stringify([snakeEntry("first", t), bad]),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^tokenwarden: \[1\]\.credentials\.default: a slack connection holds bot and user/,
    );
    expect((await runCli(["connections", "list", "--json"], { env })).stdout.trim()).toBe("[]");
  });
});

describe("bulk check and refresh report each connection's failure, with its message, and go on", () => {
  it("check --all goes past a connection it cannot check; refresh --all names why", async () => {
    const { env, path } = freshEnv("bulk");
    // Sorted first, so the run meets it before the healthy one.
    await importForeignConnection(path, "a-github");
    const t = install();
    expect(
      (
        await runCli(["connections", "import", "-"], {
          env,
          input: JSON.stringify(snakeEntry("b-slack", t)),
        })
      ).code,
    ).toBe(0);

    const check = await runCli(["connections", "check", "--all", "--json"], { env });
    expect(check.stderr).toBe("");
    expect(check.code).toBe(1);
    expect(JSON.parse(check.stdout)).toEqual([
      {
        id: "a-github",
        kind: "-",
        ok: false,
        error: "provider_misconfigured",
        message: 'provider "github" is not configured in this warden',
        status: null,
        reason: null,
      },
      { id: "b-slack", kind: "bot", ok: true, error: null, message: null, status: "active", reason: null },
    ]);
    const table = await runCli(["connections", "check", "--all"], { env });
    expect(table.stdout).toMatch(
      /a-github\s+-\s+failed: provider_misconfigured \(provider "github" is not configured in this warden\)/,
    );
    expect(table.stdout).toMatch(/b-slack\s+bot\s+ok\s+active/);

    const refresh = await runCli(["connections", "refresh", "--all", "--json"], { env });
    expect(refresh.code).toBe(1);
    const refreshed = JSON.parse(refresh.stdout) as Array<Record<string, unknown>>;
    expect(refreshed[0]).toMatchObject({
      id: "a-github",
      refreshed: false,
      error: "provider_misconfigured",
      message: 'provider "github" is not configured in this warden',
    });
    expect(refreshed[1]).toMatchObject({ id: "b-slack", refreshed: true, error: null, message: null });
    for (const out of [check.stdout, table.stdout, refresh.stdout]) {
      for (const secret of [t.bot, t.refresh, "gho_not_for_slack", "ghr_x"])
        expect(out).not.toContain(secret);
    }
  });
});

describe("connections refresh --all --kind", () => {
  it("refreshes that kind where a connection holds it; a bot-only connection is not a failure", async () => {
    const { env } = freshEnv("all-kind");
    const botOnly = install();
    const both = installWorkspace(emu, ["chat:write"], ["search:read"]);
    const withUser = snakeEntry("b-with-user", both);
    const entries = [
      snakeEntry("a-bot-only", botOnly),
      {
        ...withUser,
        credentials: {
          ...withUser.credentials,
          user: { access_token: both.user, refresh_token: both.userRefresh, expires_in: 43_200 },
        },
      },
    ];
    const imported = await runCli(["connections", "import", "-"], { env, input: JSON.stringify(entries) });
    expect(imported.code).toBe(0);

    const r = await runCli(["connections", "refresh", "--all", "--kind", "user", "--json"], { env });
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toMatchObject([
      { id: "b-with-user", kind: "user", refreshed: true, error: null },
    ]);
    expect(r.code).toBe(0);
  });

  it("--all reports a credential with nothing to refresh and goes on, exit 0; named, it is a failure", async () => {
    const { env } = freshEnv("all-no-refresh");
    const rotating = install();
    const legacy = install();
    const entries = [
      snakeEntry("a-rotating", rotating),
      { id: "b-legacy", provider: "slack", credentials: { bot: { access_token: legacy.bot } } },
    ];
    expect((await runCli(["connections", "import", "-"], { env, input: JSON.stringify(entries) })).code).toBe(
      0,
    );
    const all = await runCli(["connections", "refresh", "--all", "--json"], { env });
    expect(JSON.parse(all.stdout)).toMatchObject([
      { id: "a-rotating", refreshed: true },
      { id: "b-legacy", refreshed: false, error: "no_refresh_token" },
    ]);
    expect(all.code).toBe(0);
    expect((await runCli(["connections", "refresh", "b-legacy"], { env })).code).toBe(1);
  });
});

describe("connections delete --kind", () => {
  /** Two connections holding a bot and a user credential each, imported through the CLI. */
  async function importWithUsers(env: Record<string, string>) {
    const workspaces = [
      installWorkspace(emu, ["chat:write"], ["users:read"]),
      installWorkspace(emu, ["chat:write"], ["users:read"]),
    ];
    const entries = workspaces.map((t, i) => {
      const entry = snakeEntry(`w${i}`, t);
      return {
        ...entry,
        credentials: {
          ...entry.credentials,
          user: { access_token: t.user, refresh_token: t.userRefresh, expires_in: 43_200 },
        },
      };
    });
    const imported = await runCli(["connections", "import", "-"], { env, input: JSON.stringify(entries) });
    expect(imported.code).toBe(0);
    return workspaces;
  }

  it("signs the user out at Slack and keeps the bot: --json in the HTTP API's shape, a line without", async () => {
    const { env } = freshEnv("delete-kind");
    const [w0, w1] = await importWithUsers(env);
    if (w0 === undefined || w1 === undefined) throw new Error("two workspaces");

    const r = await runCli(["connections", "delete", "w0", "--kind", "user", "--revoke", "--yes", "--json"], {
      env,
    });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { connection: unknown };
    expect(out).toMatchObject({
      id: "w0",
      kind: "user",
      deleted: true,
      revoked: [{ kind: "user", ok: true }],
      connection: { id: "w0", status: "active", credentials: [{ kind: "bot" }] },
    });
    expect(ConnectionViewSchema.safeParse(out.connection).success).toBe(true);
    expect(emu.control.tokenInfo(w0.user ?? "")).toMatchObject({ state: "revoked" });
    expect(emu.control.tokenInfo(w0.userRefresh ?? "")).toMatchObject({ state: "revoked" });
    expect(emu.control.tokenInfo(w0.bot)).toMatchObject({ state: "active" });
    for (const secret of [w0.user, w0.userRefresh, w0.bot]) expect(r.stdout).not.toContain(secret);

    const plain = await runCli(["connections", "delete", "w1", "--kind", "user", "--yes"], { env });
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe("deleted the user credential of w1 (the connection is active)\n");
    expect(emu.control.tokenInfo(w1.user ?? "")).toMatchObject({ state: "active" }); // not revoked

    const shown = await runCli(["connections", "show", "w0", "--json"], { env });
    expect(JSON.parse(shown.stdout)).toMatchObject({ credentials: [{ kind: "bot" }] });
    const table = await runCli(["connections", "show", "w0"], { env });
    expect(table.stdout).toMatch(/user\s+credential deleted, its tokens revoked at the provider first/);
  });

  it("refuses a kind it lacks (exit 1), its last credential (exit 1), a kind that is none, and no --yes (exit 2)", async () => {
    const { env } = freshEnv("delete-kind-refused");
    const t = install();
    expect(
      (
        await runCli(["connections", "import", "-"], {
          env,
          input: JSON.stringify(snakeEntry("bot-only", t)),
        })
      ).code,
    ).toBe(0);
    const lacking = await runCli(
      ["connections", "delete", "bot-only", "--kind", "user", "--revoke", "--yes"],
      {
        env,
      },
    );
    expect(lacking).toMatchObject({
      code: 1,
      stdout: "",
      stderr: "tokenwarden: connection bot-only has no user credential (it holds bot)\n",
    });
    const last = await runCli(["connections", "delete", "bot-only", "--kind", "bot", "--revoke", "--yes"], {
      env,
    });
    expect(last).toMatchObject({
      code: 1,
      stderr:
        "tokenwarden: the bot credential is the only one connection bot-only holds: delete the connection instead\n",
    });
    const none = await runCli(["connections", "delete", "bot-only", "--kind", "admin", "--yes"], { env });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("--kind must be bot, user or default");
    const unconfirmed = await runCli(["connections", "delete", "bot-only", "--kind", "bot"], { env });
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toBe(
      "tokenwarden: deleting the bot credential of bot-only cannot be undone: add --yes\n",
    );
    expect(emu.control.tokenInfo(t.bot)).toMatchObject({ state: "active" });
    const shown = await runCli(["connections", "show", "bot-only", "--json"], { env });
    expect(JSON.parse(shown.stdout)).toMatchObject({ credentials: [{ kind: "bot" }] });
  });
});

describe("a SQLite path in a directory that does not exist", () => {
  it("is refused with exit 2 naming the directory, and nothing is created (no key file, no database)", async () => {
    const missing = join(dir, "no-such-dir");
    for (const args of [["connections", "list"], ["migrate"]]) {
      const r = await runCli([...args, "--database", `sqlite:${join(missing, "tw.db")}`], {
        env: { PATH: process.env["PATH"] ?? "" },
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`the directory of the SQLite file, ${missing}, does not exist`);
      expect(existsSync(missing)).toBe(false);
    }
  });
});

describe("a SQLite path that names no file this process can open", () => {
  it("a directory, or a path under a regular file: exit 2 naming the variable, nothing created", async () => {
    const parent = await mkdtemp(join(dir, "unopenable-"));
    const regular = join(parent, "a-file");
    await writeFile(regular, "");
    const directory = join(parent, "a-dir");
    await mkdir(directory);
    for (const path of [directory, join(regular, "tw.db")]) {
      for (const args of [["connections", "list"], ["migrate"]]) {
        const r = await runCli([...args, "--database", `sqlite:${path}`], {
          env: { PATH: process.env["PATH"] ?? "" },
        });
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/^tokenwarden: TOKENWARDEN_DATABASE_URL: .*\n$/);
        expect(r.stderr).toContain(path);
      }
    }
    // No database, and no development key beside where one would be.
    expect((await readdir(parent)).sort()).toEqual(["a-dir", "a-file"]);
    expect(await readdir(directory)).toEqual([]);
  });
});

describe("a reader that stops early (| head)", () => {
  it("connections list --json: no unhandled EPIPE stack trace, the exit code of the command", async () => {
    const { env } = freshEnv("epipe");
    // Enough output that the pipe fills and the reader has gone before the last write.
    const entries = Array.from({ length: 600 }, (_, i) => ({
      id: `BULK${i}`,
      provider: "slack",
      credentials: { bot: { access_token: `xoxb-${i}-not-a-real-token`, scopes: ["chat:write"] } },
      metadata: { teamName: `Team number ${i} with a longish name` },
    }));
    const imported = await runCli(["connections", "import", "-"], { env, input: JSON.stringify(entries) });
    expect(imported.code).toBe(0);

    const r = await runCli(["connections", "list", "--json"], { env, stopReadingEarly: true });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  }, 60_000);
});

describe("a command run without TOKENWARDEN_ENCRYPTION_KEY", () => {
  it("on a database written with a key: exit 2, one line, and no development key file left behind", async () => {
    const { env, path } = freshEnv("forgotten-key");
    expect(
      (
        await runCli(["connections", "import", "-"], {
          env,
          input: JSON.stringify(snakeEntry("T1", install())),
        })
      ).code,
    ).toBe(0);
    const keyFile = join(dir, ".tokenwarden-dev-key");
    expect(existsSync(keyFile)).toBe(false);

    // The operator forgot to export the key in this shell.
    const { TOKENWARDEN_ENCRYPTION_KEY: _forgotten, ...withoutKey } = env;
    const r = await runCli(["connections", "list"], { env: withoutKey });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^tokenwarden: TOKENWARDEN_ENCRYPTION_KEY is not set and this database already holds connections.*\n$/,
    );
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(keyFile)).toBe(false);
    expect(rows(path, "SELECT key FROM settings WHERE key LIKE 'key_check:%'")).toHaveLength(1);
  });

  it("on a new database: a development key file is generated, with a warning", async () => {
    const { env } = freshEnv("dev-key-new");
    const own = join(dir, "dev-key-new");
    const { TOKENWARDEN_ENCRYPTION_KEY: _none, ...withoutKey } = env;
    await mkdir(own);
    const r = await runCli(["connections", "list"], {
      env: { ...withoutKey, TOKENWARDEN_DATABASE_URL: `sqlite:${join(own, "tw.db")}` },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/generated a development key/);
    expect(existsSync(join(own, ".tokenwarden-dev-key"))).toBe(true);
  });
});

describe("connections list --limit", () => {
  it("says on stderr when more connections match than it shows, and only then", async () => {
    const { env } = freshEnv("list-limit");
    const input = JSON.stringify(["A1", "A2", "A3"].map((id) => snakeEntry(id, install())));
    expect((await runCli(["connections", "import", "-"], { env, input })).code).toBe(0);
    const cut = await runCli(["connections", "list", "--limit", "2"], { env });
    expect(cut.code).toBe(0);
    expect(cut.stderr).toBe("the first 2 shown; more match (raise --limit, or leave it out)\n");
    expect(cut.stdout).toContain("A2");
    expect(cut.stdout).not.toContain("A3");
    for (const limit of ["3", "10"]) {
      const all = await runCli(["connections", "list", "--limit", limit, "--json"], { env });
      expect(all.stderr).toBe("");
      expect((JSON.parse(all.stdout) as unknown[]).length).toBe(3);
    }
  });
});
