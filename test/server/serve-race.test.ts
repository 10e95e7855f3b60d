// Three `serve` OS processes on one PostgreSQL schema, hammered concurrently over HTTP on expiring
// connections while their background refreshers run: exactly one refresh per credential per
// rotation (the emulator counts), and every process hands out the same, current token.

import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { type SlackEmulator, startSlackEmulator } from "../../src/emulator/index.js";
import { createWarden } from "../../src/engine/warden.js";
import { eventually } from "../helpers/eventually.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createPgSchema, type PgSchema, TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import { openSealedStore } from "../helpers/store-under-test.js";
import { API_KEY, botFromInstall } from "./server-harness.js";

const PROCESSES = 3;
const CONNECTIONS = 5;
const ROUNDS = 3;

interface ServeProcess {
  child: ChildProcess;
  url: string;
  setClock(nowMs: number): Promise<void>;
}

async function spawnServe(env: NodeJS.ProcessEnv): Promise<ServeProcess> {
  const child = fork(join(import.meta.dirname, "serve-worker.ts"), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let seq = 0;
  const acks = new Map<number, () => void>();
  const url = await new Promise<string>((resolve, reject) => {
    child.on("message", (m: { type: string; url?: string; seq?: number }) => {
      if (m.type === "listening" && m.url) resolve(m.url);
      if (m.type === "ack" && m.seq !== undefined) acks.get(m.seq)?.();
    });
    child.once("exit", (code) => reject(new Error(`serve worker exited with ${code}`)));
  });
  return {
    child,
    url,
    setClock: (nowMs) =>
      new Promise<void>((resolve) => {
        seq++;
        acks.set(seq, resolve);
        child.send({ type: "clock", nowMs, seq });
      }),
  };
}

let emu: SlackEmulator | undefined;
let db: PgSchema | undefined;
let workers: ServeProcess[] = [];
afterEach(async () => {
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          w.child.once("exit", () => resolve());
          w.child.send({ type: "stop" });
          setTimeout(() => w.child.kill("SIGKILL"), 5_000).unref();
        }),
    ),
  );
  workers = [];
  await emu?.close();
  await db?.drop();
});

it("refreshes each credential exactly once per rotation across three serve processes", async () => {
  const clock = new FakeClock(Date.UTC(2026, 5, 1));
  emu = await startSlackEmulator({ now: () => clock.now() });
  const schemaDb = await createPgSchema("serve-race");
  db = schemaDb;
  const key = randomBytes(32).toString("base64");

  // Seed the connections (bot + user each) through a warden on the same schema.
  const store = await openSealedStore("postgres", db.schema, key);
  const seeder = await createWarden({
    store,
    clock,
    env: {},
    providers: {
      slack: { clientId: emu.demoApp.clientId, clientSecret: emu.demoApp.clientSecret, baseUrl: emu.url },
    },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  const ids: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const team = emu.control.createTeam({ name: `Race ${i}` });
    const { userId } = emu.control.createUser(team.teamId);
    const install = emu.control.install({
      clientId: emu.demoApp.clientId,
      teamId: team.teamId,
      userId,
      botScopes: ["chat:write"],
      userScopes: ["users:read"],
    });
    await seeder.connections.import({
      id: team.teamId,
      provider: "slack",
      credentials: {
        bot: botFromInstall(install),
        user: {
          accessToken: install.authed_user?.access_token ?? "",
          refreshToken: install.authed_user?.refresh_token ?? null,
          expiresIn: 43_200,
        },
      },
    });
    ids.push(team.teamId);
  }
  await seeder.close();

  const env: NodeJS.ProcessEnv = {
    NODE_ENV: "test",
    TW_NOW_MS: String(clock.now()),
    TOKENWARDEN_DATABASE_URL: `${TEST_POSTGRES_URL}?schema=${db.schema}`,
    TOKENWARDEN_ENCRYPTION_KEY: key,
    TOKENWARDEN_API_KEY: API_KEY,
    SLACK_CLIENT_ID: emu.demoApp.clientId,
    SLACK_CLIENT_SECRET: emu.demoApp.clientSecret,
    SLACK_BASE_URL: emu.url,
  };
  workers = await Promise.all(Array.from({ length: PROCESSES }, () => spawnServe(env)));

  for (let round = 1; round <= ROUNDS; round++) {
    // 11 h on: every token is inside its 2 h refresh margin, on both sides at once.
    clock.advance(11 * 3_600_000);
    await Promise.all(workers.map((w) => w.setClock(clock.now())));
    const requests = workers.flatMap((w) =>
      ids.flatMap((id) =>
        (["bot", "user"] as const).flatMap((kind) =>
          Array.from({ length: 3 }, () =>
            fetch(`${w.url}/v1/connections/${id}/token?kind=${kind}&min_ttl=600`, {
              headers: { authorization: `Bearer ${API_KEY}` },
            }).then(async (r) => ({ status: r.status, body: (await r.json()) as { access_token?: string } })),
          ),
        ),
      ),
    );
    const answers = await Promise.all(requests);
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    // A caller whose stored token still lasts its min_ttl is answered at once while a refresher
    // (in any process) holds the refresh, so the last refreshes may still be landing: wait for
    // them, then check none happened twice.
    const emulator = emu;
    const counters = await eventually(
      () => emulator.control.counters(),
      (c) => Object.values(c.refreshesPerCredential).filter((n) => n >= round).length === CONNECTIONS * 2,
      { what: `every credential's refresh of round ${round}` },
    );
    expect(counters.maxPresentations, "a refresh token presented twice").toBe(1);
    expect(Object.values(counters.refreshesPerCredential)).toEqual(Array(CONNECTIONS * 2).fill(round));
    // The emulator counts a refresh when it answers; the store holds it a commit later. The next
    // round moves the clock 11 h: a claim still held then would read as lapsed by 11 h, and its
    // token be re-presented, by construction. So: wait until no claim is held.
    const schema = schemaDb.schema;
    await eventually(
      async () =>
        (
          await schemaDb.admin.query(
            `SELECT count(*)::int AS n FROM "${schema}".credentials WHERE claim_id IS NOT NULL`,
          )
        ).rows[0].n as number,
      (n) => n === 0,
      { what: `every refresh of round ${round} stored` },
    );
    // Checked again once everything is stored: a second spend during the wait counts too.
    const settled = emu.control.counters();
    expect(settled.maxPresentations, "a refresh token presented twice").toBe(1);
    expect(Object.values(settled.refreshesPerCredential)).toEqual(Array(CONNECTIONS * 2).fill(round));
    // Every process now hands out the same, current token for each credential, once the others'
    // notifications have arrived (they follow each commit by a few milliseconds).
    for (const id of ids) {
      for (const kind of ["bot", "user"]) {
        const tokens = await eventually(
          () =>
            Promise.all(
              workers.map(async (w) => {
                const r = await fetch(`${w.url}/v1/connections/${id}/token?kind=${kind}`, {
                  headers: { authorization: `Bearer ${API_KEY}` },
                });
                return ((await r.json()) as { access_token: string }).access_token;
              }),
            ),
          (t) => new Set(t).size === 1,
          { what: `every process handing out one ${kind} token of ${id}` },
        );
        expect(emu.control.tokenInfo(tokens[0] ?? "").state).toBe("active");
      }
    }
  }
}, 90_000);
