// `diagnose token --refresh` of a refresh token a stored connection holds, with client credentials
// that cannot refresh it (a mistyped secret, another app's): the run says so, spends nothing, and
// changes nothing in the shared store, as the built binary does it against the emulator.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { openSealedStore } from "../helpers/store-under-test.js";
import { ensureBuilt, runCli } from "./built-cli.js";
import { cliEnv, installWorkspace } from "./cli-fixtures.js";

let emu: SlackEmulator;
let dir: string;
let env: Record<string, string>;
const key = randomBytes(32).toString("base64");

beforeAll(async () => {
  ensureBuilt();
  emu = await startSlackEmulator();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-diagnose-stored-"));
  env = cliEnv(emu, join(dir, "tw.db"), key);
}, 120_000);
afterAll(async () => {
  await emu?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A new workspace's tokens imported as connection `<prefix>-<team>`, through the CLI. */
async function importInstalled(prefix: string, e: Record<string, string> = env) {
  const t = installWorkspace(emu);
  const id = `${prefix}-${t.teamId}`;
  const input = JSON.stringify({
    id,
    provider: "slack",
    credentials: { bot: { access_token: t.bot, refresh_token: t.refresh, expires_in: 43_200 } },
  });
  expect((await runCli(["connections", "import", "-"], { env: e, input })).code).toBe(0);
  return { t, id };
}

describe("diagnose token --refresh of a stored refresh token with wrong client credentials", () => {
  it("says misconfigured (client_credentials_mismatch), not 'unreachable: Slack said unknown'", async () => {
    const { t } = await importInstalled("wrongsecret");

    // The operator copied the wrong secret: Slack refuses the client before it reads the token.
    const r = await runCli(
      ["diagnose", "token", "--token-env", "RT", "--refresh", "--client-secret", "0".repeat(32), "--json"],
      { env: { ...env, RT: t.refresh } },
    );
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as { verdict: string; error: string; causes: Array<{ code: string }> };
    expect({ verdict: d.verdict, error: d.error, leading: d.causes[0]?.code }).toEqual({
      verdict: "misconfigured",
      error: "bad_client_secret",
      leading: "client_credentials_mismatch",
    });
  });

  it("the human output does not send the user to check the network", async () => {
    const { t } = await importInstalled("wrongsecret2");
    const r = await runCli(
      ["diagnose", "token", "--token-env", "RT", "--refresh", "--client-secret", "0".repeat(32)],
      { env: { ...env, RT: t.refresh } },
    );
    expect(r.stdout).not.toMatch(/UNREACHABLE|Slack said: unknown|reachable from this machine/);
    expect(r.stdout).toMatch(/MISCONFIGURED/);
  });
});

describe("a CLI run with a wrong client secret: no side effect on the shared store", () => {
  it("connections refresh reports bad_client_secret, and flags nothing for the servers on the store", async () => {
    const sqlite = join(dir, "sidefx-refresh.db");
    const e = {
      ...env,
      TOKENWARDEN_DATABASE_URL: `sqlite:${sqlite}`,
      TOKENWARDEN_WEBHOOK_URL: "http://127.0.0.1:9/hook",
    };
    const { id } = await importInstalled("sidefx-refresh", e);
    const r = await runCli(["connections", "refresh", id, "--client-secret", "typo", "--json"], { env: e });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject([{ id, refreshed: false, error: "bad_client_secret" }]);
    const db = new Database(sqlite, { readonly: true });
    const states = db.prepare("SELECT status FROM provider_states WHERE status = 'misconfigured'").all();
    const hooks = db.prepare("SELECT type FROM outbox WHERE type = 'provider.misconfigured'").all();
    db.close();
    expect({ states, hooks }).toEqual({ states: [], hooks: [] });
    // The right secret refreshes at once: nothing of the typo was kept.
    expect((await runCli(["connections", "refresh", id], { env: e })).code).toBe(0);
  });

  it("diagnose token --refresh does not flag the provider misconfigured nor queue a provider.misconfigured webhook", async () => {
    const sqlite = join(dir, "sidefx.db");
    const e = {
      ...env,
      TOKENWARDEN_DATABASE_URL: `sqlite:${sqlite}`,
      TOKENWARDEN_WEBHOOK_URL: "http://127.0.0.1:9/hook",
    };
    const { t } = await importInstalled("sidefx", e);
    // A typo in a diagnostic run; the server on this store has the right secret.
    await runCli(["diagnose", "token", "--token-env", "RT", "--refresh", "--client-secret", "typo"], {
      env: { ...e, RT: t.refresh },
    });
    const db = new Database(sqlite, { readonly: true });
    const states = db.prepare("SELECT provider, status FROM provider_states").all();
    const hooks = db.prepare("SELECT type FROM outbox WHERE type = 'provider.misconfigured'").all();
    db.close();
    expect(hooks).toEqual([]);
    expect(states.filter((s) => (s as { status: string }).status === "misconfigured")).toEqual([]);
  });
});

describe("diagnose token --refresh with the wrong app's client credentials", () => {
  it("spends nothing and leaves the stored connection active once tokenwarden has refreshed it", async () => {
    const { id } = await importInstalled("otherapp");
    // Refreshed once by tokenwarden (the refresher does within hours of an import): the credential
    // now records the client its tokens belong to.
    expect((await runCli(["connections", "refresh", id], { env })).code).toBe(0);
    const shown = JSON.parse((await runCli(["connections", "show", id, "--json"], { env })).stdout) as {
      credentials: Array<{ provider_data: Record<string, unknown> }>;
    };
    expect(shown.credentials[0]?.provider_data["client_id"]).toBe(emu.demoApp.clientId);
    const refreshes = emu.control.counters().refreshes;

    // SLACK_CLIENT_ID/SECRET of the staging app, left in the shell, against the production store.
    const staging = emu.control.createApp({ name: "staging" });
    const current = await currentRefreshToken(id);
    const r = await runCli(
      [
        "diagnose",
        "token",
        "--token-env",
        "RT",
        "--refresh",
        "--client-id",
        staging.clientId,
        "--client-secret",
        staging.clientSecret,
        "--json",
      ],
      { env: { ...env, RT: current } },
    );
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as { verdict: string; error: string; causes: Array<{ code: string }> };
    expect({ verdict: d.verdict, error: d.error, leading: d.causes[0]?.code }).toEqual({
      verdict: "misconfigured",
      error: "client_id_mismatch",
      leading: "client_credentials_mismatch",
    });
    expect(emu.control.counters().refreshes).toBe(refreshes); // nothing sent
    expect((emu.control.tokenInfo(current) as { state: string }).state).toBe("active");
    const after = JSON.parse((await runCli(["connections", "show", id, "--json"], { env })).stdout) as {
      status: string;
    };
    expect(after.status).toBe("active");
  });
});

/** The connection's current refresh token, read as the engine reads it. */
async function currentRefreshToken(id: string): Promise<string> {
  const store = await openSealedStore("sqlite", join(dir, "tw.db"), key);
  try {
    return (await store.getCredential({ connectionId: id, kind: "bot" }))?.refreshToken?.reveal() ?? "";
  } finally {
    await store.close();
  }
}
