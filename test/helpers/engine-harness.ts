// An engine under test: a real store (SQLite file or PostgreSQL schema), the
// Slack emulator over HTTP on loopback, and one fake clock shared by both.
import { randomBytes } from "node:crypto";
import type { Store } from "../../src/core/ports.js";
import type { SlackEmulator, SlackEmulatorOptions } from "../../src/emulator/index.js";
import { startSlackEmulator } from "../../src/emulator/index.js";
import type { EngineTimings } from "../../src/engine/context.js";
import { createWarden, type Warden, type WardenOptions } from "../../src/engine/warden.js";
import { FakeClock } from "./fake-clock.js";
import { createPgSchema, type PgSchema } from "./pg-schema.js";
import { openSealedStore, type StoreKind } from "./store-under-test.js";
import { createTmpSqlite, type TmpSqlite } from "./tmp-sqlite.js";

export const FAST_TIMINGS: Partial<EngineTimings> = {
  leaseMs: 5_000,
  providerTimeoutMs: 2_000,
  waitTimeoutMs: 10_000,
  pollMs: 5,
};

export interface EngineHarness {
  kind: StoreKind;
  clock: FakeClock;
  emu: SlackEmulator;
  key: string;
  /** SQLite path or PostgreSQL schema: what another process opens to share the store. */
  location: string;
  store: Store;
  warden: Warden;
  /** Everything the wardens logged, as JSON lines: tests search it for secrets. */
  logs: string[];
  /** Another warden (as another process would have) on the same store and emulator. */
  peer(options?: Partial<WardenOptions>, key?: string): Promise<Warden>;
  /** Installs a fresh team in the emulator and imports its tokens; returns the connection id and raw install. */
  installAndImport(options?: {
    withUser?: boolean;
    id?: string;
  }): Promise<{ id: string; install: Record<string, unknown> }>;
  /** Bytes or rows at rest, as text, to search for plaintext tokens. */
  textAtRest(): Promise<string>;
  close(): Promise<void>;
}

export async function openEngineHarness(
  kind: StoreKind,
  options: { emulator?: SlackEmulatorOptions; warden?: Partial<WardenOptions> } = {},
): Promise<EngineHarness> {
  const clock = new FakeClock(Date.UTC(2026, 5, 1));
  const emu = await startSlackEmulator({ now: () => clock.now(), ...options.emulator });
  const key = randomBytes(32).toString("base64");
  let sqlite: TmpSqlite | null = null;
  let pgSchema: PgSchema | null = null;
  if (kind === "sqlite") sqlite = await createTmpSqlite();
  else pgSchema = await createPgSchema(`engine-${Math.random()}`);
  const location = sqlite?.path ?? pgSchema?.schema ?? "";
  const wardens: Warden[] = [];
  const logs: string[] = [];
  const record =
    (level: string) =>
    (obj: object, msg?: string): void => {
      logs.push(JSON.stringify({ level, msg, ...obj }));
    };
  const logger = {
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
  };
  const open = async (extra: Partial<WardenOptions> = {}, keyRing = key): Promise<Warden> => {
    const store = await openSealedStore(kind, location, keyRing);
    const w = await createWarden({
      store,
      clock,
      providers: {
        slack: { clientId: emu.demoApp.clientId, clientSecret: emu.demoApp.clientSecret, baseUrl: emu.url },
      },
      timings: FAST_TIMINGS,
      publicUrl: "http://127.0.0.1:3003",
      env: {},
      logger,
      ...options.warden,
      ...extra,
    });
    wardens.push(w);
    return w;
  };
  const warden = await open();
  const store = await openSealedStore(kind, location, key);
  await store.migrate();
  let teams = 0;
  return {
    kind,
    clock,
    emu,
    key,
    location,
    store,
    warden,
    logs,
    peer: open,
    async installAndImport({ withUser = false, id } = {}) {
      teams++;
      const team = emu.control.createTeam({ name: `Team ${teams}` });
      const { userId } = emu.control.createUser(team.teamId);
      const install = emu.control.install({
        clientId: emu.demoApp.clientId,
        teamId: team.teamId,
        userId,
        botScopes: ["chat:write", "channels:read"],
        ...(withUser ? { userScopes: ["users:read"] } : {}),
      });
      const user = install["authed_user"] as Record<string, unknown>;
      await warden.connections.import({
        id: id ?? team.teamId,
        provider: "slack",
        credentials: {
          bot: { ...grantTokens(install), scopes: install["scope"] as string },
          ...(withUser ? { user: { ...grantTokens(user), scopes: user["scope"] as string } } : {}),
        },
        metadata: { teamName: team.name },
      });
      return { id: id ?? team.teamId, install };
    },
    async textAtRest() {
      if (sqlite) return sqlite.bytesAtRest().toString("latin1");
      const admin = pgSchema?.admin;
      if (!admin) return "";
      const tables = await admin.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
        [location],
      );
      const dumps = await Promise.all(
        tables.rows.map((t) => admin.query(`SELECT * FROM "${location}"."${t.table_name}"`)),
      );
      return JSON.stringify(dumps.map((d) => d.rows));
    },
    async close() {
      await Promise.allSettled(wardens.map((w) => w.close()));
      await store.close();
      await emu.close();
      await sqlite?.remove();
      await pgSchema?.drop();
    },
  };
}

/** What a worker process (test/races/refresh-worker.ts) needs to open the same store and emulator. */
export function workerEnv(h: EngineHarness, ids: string[]): Record<string, string> {
  return {
    TW_STORE: h.kind,
    TW_STORE_LOCATION: h.location,
    TW_KEY: h.key,
    TW_SLACK_URL: h.emu.url,
    TW_CLIENT_ID: h.emu.demoApp.clientId,
    TW_CLIENT_SECRET: h.emu.demoApp.clientSecret,
    TW_NOW_MS: String(h.clock.now()),
    TW_CONNECTIONS: ids.join(","),
  };
}

/** An emulator grant (an install's bot part, its `authed_user`, a refresh reply) as an import credential. */
export function grantTokens(grant: Record<string, unknown>): {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
} {
  return {
    accessToken: String(grant["access_token"]),
    refreshToken: String(grant["refresh_token"]),
    expiresIn: Number(grant["expires_in"]),
  };
}

/** Slack's auth.test with `token`, straight to the emulator (what an API call through withToken does). */
export async function authTest(h: EngineHarness, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${h.emu.url}/api/auth.test`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
  return (await res.json()) as Record<string, unknown>;
}

/** Re-imports an install's tokens as lasting 24 h where Slack says 12 h: past 12 h, Slack answers token_expired. */
export async function importLongerThanSlack(
  h: EngineHarness,
  id: string,
  install: Record<string, unknown>,
): Promise<void> {
  await h.warden.connections.import({
    id,
    provider: "slack",
    credentials: {
      bot: {
        accessToken: install["access_token"] as string,
        refreshToken: install["refresh_token"] as string,
        expiresIn: 86_400,
      },
    },
  });
}
