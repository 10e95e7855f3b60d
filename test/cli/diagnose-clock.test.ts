// `tokenwarden diagnose connection` compares stored instants (a claim's lease end, an access token's
// expiry), dated on the database's clock, with its warden's clock, not with this host's Date.now(): run
// from a host whose clock is a minute ahead of the database's, it must not read a live refresh as one
// whose outcome was lost. From a review (branch review9).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/core/ports.js";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { createWarden } from "../../src/engine/warden.js";
import { createPgSchema, type PgSchema, TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import { openSealedStore } from "../helpers/store-under-test.js";
import { ensureBuilt, runCli } from "./built-cli.js";
import { installWorkspace } from "./cli-fixtures.js";

let emu: SlackEmulator;
let dir: string;
let pgSchema: PgSchema;
let store: Store;
let key: string;
let aheadHook: string;

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-diagnose-clock-"));
  // The CLI's host: its wall clock runs a minute ahead of the database's (and of this process's).
  aheadHook = join(dir, "ahead.mjs");
  await writeFile(aheadHook, "const real = Date.now; Date.now = () => real() + 60_000;\n");
  pgSchema = await createPgSchema("diagnose-clock");
  key = randomBytes(32).toString("base64");
  store = await openSealedStore("postgres", pgSchema.schema, key);
}, 120_000);
afterAll(async () => {
  await store?.close();
  await emu?.close();
  await pgSchema?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("diagnose connection from a host whose clock runs a minute ahead of the database's (review)", () => {
  it("does not report a live refresh (its lease 30 s on) as one whose outcome was lost", async () => {
    const warden = await createWarden({
      store: await openSealedStore("postgres", pgSchema.schema, key),
      providers: {
        slack: { clientId: emu.demoApp.clientId, clientSecret: emu.demoApp.clientSecret, baseUrl: emu.url },
      },
      env: {},
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const t = installWorkspace(emu);
    try {
      await warden.connections.import({
        id: t.teamId,
        provider: "slack",
        credentials: { bot: { accessToken: t.bot, refreshToken: t.refresh, expiresIn: 43_200 } },
      });
    } finally {
      await warden.close();
    }
    // A live holder on a host in step with the database: its refresh is in flight, its lease 30 s on.
    const held = await store.claimRefresh(
      { connectionId: t.teamId, kind: "bot" },
      { owner: "holder", nowMs: Date.now(), leaseMs: 30_000, freshUntilMs: Number.MAX_SAFE_INTEGER },
    );
    expect(held.kind).toBe("claimed");
    const env = {
      TOKENWARDEN_DATABASE_URL: `${TEST_POSTGRES_URL}?schema=${pgSchema.schema}`,
      TOKENWARDEN_ENCRYPTION_KEY: key,
      SLACK_CLIENT_ID: emu.demoApp.clientId,
      SLACK_CLIENT_SECRET: emu.demoApp.clientSecret,
      SLACK_BASE_URL: emu.url,
    };
    const diagnose = async (extra: Record<string, string>) => {
      const r = await runCli(["diagnose", "connection", t.teamId, "--json"], { env: { ...env, ...extra } });
      return (JSON.parse(r.stdout) as { causes: Array<{ code: string }> }).causes.map((c) => c.code);
    };
    // In step with the database: nothing lost.
    expect(await diagnose({})).not.toContain("refresh_response_lost");
    // A minute ahead: its own warden reads the database's clock, its diagnosis should too.
    expect(await diagnose({ NODE_OPTIONS: `--import=${pathToFileURL(aheadHook).href}` })).not.toContain(
      "refresh_response_lost",
    );
  }, 60_000);
});
