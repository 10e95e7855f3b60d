// `tokenwarden diagnose` as a user runs it: the built binary against the emulator and a real
// SQLite file, for what only the command itself decides (input checks, exit codes, one-line errors).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { ensureBuilt, runCli } from "./built-cli.js";
import { cliEnv } from "./cli-fixtures.js";

let emu: SlackEmulator;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-diagnose-cli-"));
  env = cliEnv(emu, join(dir, "tw.db"), randomBytes(32).toString("base64"));
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
