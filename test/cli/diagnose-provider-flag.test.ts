// `tokenwarden diagnose connection` (the CLI opens its warden with providerState "local") reads a shared
// flag naming the credentials it runs with, or naming none, as its own problem: the verdict.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseKeyRing } from "../../src/crypto/key-ring.js";
import { AesGcmSealer } from "../../src/crypto/seal.js";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { clientFingerprint } from "../../src/providers/client-fingerprint.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { ensureBuilt, runCli } from "./built-cli.js";
import { cliEnv, installWorkspace } from "./cli-fixtures.js";

let emu: SlackEmulator;
let dir: string;
let env: Record<string, string>;
let dbPath: string;
let key: string;

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-diagnose-flag-"));
  dbPath = join(dir, "tw.db");
  key = randomBytes(32).toString("base64");
  env = cliEnv(emu, dbPath, key);
}, 120_000);
afterAll(async () => {
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function importOne(): Promise<string> {
  const t = installWorkspace(emu);
  const input = JSON.stringify({
    id: t.teamId,
    provider: "slack",
    credentials: { bot: { access_token: t.bot, refresh_token: t.refresh, expires_in: 43_200 } },
  });
  expect((await runCli(["connections", "import", "-"], { env, input })).code).toBe(0);
  return t.teamId;
}

async function flag(fingerprint: string | null): Promise<void> {
  const store = await SqliteStore.open({ path: dbPath, sealer: new AesGcmSealer(parseKeyRing(key)) });
  try {
    await store.setProviderState({
      provider: "slack",
      status: "misconfigured",
      reason: "provider_misconfigured",
      lastError: "bad_client_secret",
      sinceMs: Date.now(),
      clientFingerprint: fingerprint,
      assertedAtMs: Date.now(),
    });
  } finally {
    await store.close();
  }
}

async function diagnose(id: string, extraEnv: Record<string, string> = {}) {
  const r = await runCli(["diagnose", "connection", id, "--json"], { env: { ...env, ...extraEnv } });
  return JSON.parse(r.stdout) as { verdict: string; causes: Array<{ code: string; likelihood: string }> };
}

describe("diagnose connection (CLI, providerState local) and a shared provider flag", () => {
  it("a flag naming the very credentials the command runs with is the verdict, not another process's low cause", async () => {
    const id = await importOne();
    const secret = "the-servers-mistyped-secret";
    await flag(clientFingerprint(emu.demoApp.clientId, secret));
    const d = await diagnose(id, { SLACK_CLIENT_SECRET: secret });
    expect(d.verdict).toBe("misconfigured");
    expect(d.causes[0]).toMatchObject({ code: "client_credentials_mismatch", likelihood: "high" });
  }, 30_000);

  it("a legacy flag naming no credentials (before migration 0009) holds every process back: the verdict", async () => {
    const id = await importOne();
    await flag(null);
    const d = await diagnose(id);
    expect(d.verdict).toBe("misconfigured");
    expect(d.causes[0]).toMatchObject({ code: "client_credentials_mismatch", likelihood: "high" });
  }, 30_000);
});
