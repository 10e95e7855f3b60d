// A key removed from TOKENWARDEN_ENCRYPTION_KEY too early leaves the credentials it sealed unreadable:
// skipped by every refresher, failing every token request, their status unchanged. That is what
// `diagnose connection` is run for, so it explains it instead of failing with the sealer's error.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { ensureBuilt, runCli } from "./built-cli.js";
import { cliEnv, installWorkspace } from "./cli-fixtures.js";

let emu: SlackEmulator;
let dir: string;
const k1 = `k1:${randomBytes(32).toString("base64")}`;
const k2 = `k2:${randomBytes(32).toString("base64")}`;

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-diagnose-key-"));
}, 120_000);
afterAll(async () => {
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function importUnder(ring: string, dbPath: string): Promise<string> {
  const t = installWorkspace(emu);
  const input = JSON.stringify({
    id: t.teamId,
    provider: "slack",
    credentials: { bot: { access_token: t.bot, refresh_token: t.refresh, expires_in: 43_200 } },
  });
  const r = await runCli(["connections", "import", "-"], { env: cliEnv(emu, dbPath, ring), input });
  expect(r.code, r.stderr).toBe(0);
  return t.teamId;
}

describe("diagnose connection with a credential sealed under a key the ring no longer holds", () => {
  it("names the key and the fix, instead of failing; a connection under a held key stays healthy", async () => {
    const dbPath = join(dir, "tw.db");
    const old = await importUnder(k1, dbPath);
    const current = await importUnder(`${k2},${k1}`, dbPath);
    // k1 dropped before `keys rotate` re-sealed what it holds.
    const env = cliEnv(emu, dbPath, k2);
    const r = await runCli(["diagnose", "connection", old, "--json"], { env });
    expect(r.stderr).toBe("");
    const d = JSON.parse(r.stdout) as {
      verdict: string;
      refreshable: boolean;
      causes: Array<{ code: string; likelihood: string; explanation: string }>;
      fix: string[];
    };
    expect(d).toMatchObject({ verdict: "misconfigured", refreshable: false });
    expect(d.causes[0]).toMatchObject({ code: "encryption_key_missing", likelihood: "high" });
    expect(d.causes[0]?.explanation).toContain('key id "k1"');
    expect(d.fix[0]).toContain("TOKENWARDEN_ENCRYPTION_KEY");
    expect(r.stdout).not.toContain(k1.slice(3)); // never a key
    const text = await runCli(["diagnose", "connection", old], { env });
    expect(text.stdout).toContain("encryption_key_missing");

    const healthy = await runCli(["diagnose", "connection", current, "--json"], { env });
    expect(JSON.parse(healthy.stdout)).toMatchObject({ verdict: "healthy" });
  }, 60_000);
});
