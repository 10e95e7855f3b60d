// `tokenwarden diagnose` as a user runs it: the built binary against the emulator and a real
// SQLite file, for what only the command itself decides (input checks, exit codes, one-line errors).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { ensureBuilt, runCli } from "./built-cli.js";
import { cliEnv, installWorkspace } from "./cli-fixtures.js";

let emu: SlackEmulator;
let dir: string;
let env: Record<string, string>;
let dbPath: string;

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-diagnose-cli-"));
  dbPath = join(dir, "tw.db");
  env = cliEnv(emu, dbPath, randomBytes(32).toString("base64"));
}, 120_000);
afterAll(async () => {
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("diagnose token with a mis-pasted token", () => {
  // Copying a token out of a rich-text page or chat adds typographic quotes or invisible
  // characters; fetch refuses such a header value before anything is sent.
  for (const [name, token, problem] of [
    ["typographic quotes", "\u201cxoxb-1234567890-abcdefghijkl\u201d", "a typographic quote (U+201C)"],
    ["a zero-width space", "xoxb-1234567890\u200b-abcdefghijkl", "an invisible character (U+200B)"],
  ] as const) {
    it(`with ${name}: a usage error naming the character, not blamed on the network`, async () => {
      const r = await runCli(["diagnose", "token", "--token-env", "TK"], { env: { ...env, TK: token } });
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(
        `tokenwarden: the token holds a character a Slack token cannot: ${problem}; copy it again as plain text\n`,
      );
      expect(r.stderr).not.toContain("abcdefghijkl");
    });
  }
});

describe("diagnose token with a value that has no Slack token prefix at all", () => {
  it("invalid_auth for a non-token leads with token_unknown, not 'reinstalled'", async () => {
    const r = await runCli(["diagnose", "token", "--token-env", "TK", "--json"], {
      env: { ...env, TK: "my-slack-app-password-123" },
    });
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as { verdict: string; causes: Array<{ code: string }> };
    expect(d.verdict).toBe("invalid");
    expect(d.causes[0]?.code).toBe("token_unknown");
  });
});

describe("diagnose with an invalid Slack base URL", () => {
  it("--slack-base-url http://[::1 is a usage error (exit 2, one line), not an UNREACHABLE diagnosis", async () => {
    const r = await runCli(["diagnose", "token", "--token-env", "TK", "--slack-base-url", "http://[::1"], {
      env: { ...env, TK: "xoxb-1234567890-abcdefghijkl" },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("tokenwarden: --slack-base-url is not a valid http(s) URL\n");
    expect(r.stdout).toBe("");
  });

  it("from SLACK_BASE_URL: the variable is named", async () => {
    const r = await runCli(["diagnose", "app"], { env: { ...env, SLACK_BASE_URL: "http://[::1" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("tokenwarden: SLACK_BASE_URL is not a valid http(s) URL\n");
  });
});

describe("diagnose connection after a refresh whose process died mid-call", () => {
  it("names the refresh whose outcome was never recorded, once its claim has lapsed", async () => {
    const t = installWorkspace(emu);
    const id = `killed-${t.teamId}`;
    const input = JSON.stringify({
      id,
      provider: "slack",
      credentials: { bot: { access_token: t.bot, refresh_token: t.refresh, expires_in: 43_200 } },
    });
    expect((await runCli(["connections", "import", "-"], { env, input })).code).toBe(0);

    // Slack never answers; the refreshing process is killed while it waits.
    emu.control.fault("oauth.v2.access", { kind: "hang", times: 1 });
    const killed = await runCli(["connections", "refresh", id], { env, timeoutMs: 4_000 });
    expect(killed.timedOut).toBe(true);
    emu.control.clearFaults();

    const db = new Database(dbPath);
    try {
      const row = db
        .prepare("SELECT status, refresh_in_doubt FROM credentials WHERE connection_id = ?")
        .get(id) as { status: string; refresh_in_doubt: number };
      expect(row).toEqual({ status: "active", refresh_in_doubt: 1 });

      // Its lease still runs: from the store, a dead holder looks like a refresh in flight.
      const during = await runCli(["diagnose", "connection", id, "--json"], { env });
      const inFlight = JSON.parse(during.stdout) as { verdict: string; causes: Array<{ code: string }> };
      expect(inFlight.causes.map((c) => c.code)).not.toContain("refresh_response_lost");

      // The lease runs out (30 s, as the CLI's clock is the real one: aged in the file instead).
      db.prepare("UPDATE credentials SET claim_until_ms = ? WHERE connection_id = ?").run(Date.now() - 1, id);
    } finally {
      db.close();
    }
    const r = await runCli(["diagnose", "connection", id, "--json"], { env });
    const d = JSON.parse(r.stdout) as { verdict: string; causes: Array<{ code: string }>; fix: string[] };
    expect(d.causes.map((c) => c.code)).toContain("refresh_response_lost");
    expect(d.fix[0]).toContain(`tokenwarden connections refresh ${id}`);
  }, 30_000);
});
