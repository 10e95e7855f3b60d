/**
 * Invariant 1 at the store level, across OS processes: 4 processes migrate one
 * fresh database at once, then claim the same 20 credentials at the same fake
 * instant; each credential is claimed exactly once.
 */
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { Store } from "../../src/core/ports.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { createPgSchema } from "../helpers/pg-schema.js";
import { connection, credential, testSealer } from "../helpers/store-fixtures.js";
import { createTmpSqlite } from "../helpers/tmp-sqlite.js";

const WORKER = fileURLToPath(new URL("./store-claim-worker.ts", import.meta.url));
const PROCESSES = 4;
const IDS = Array.from({ length: 20 }, (_, i) => `T${String(i).padStart(2, "0")}`);
const NOW_MS = 5_000;

type Outcome = Array<[string, string]>;

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  result: Promise<Outcome>;
}

function forkWorker(env: Record<string, string>): Worker {
  const child = fork(WORKER, [], { execArgv: ["--import", "tsx"], env: { ...process.env, ...env } });
  let ready!: () => void;
  const readyPromise = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const result = new Promise<Outcome>((resolve, reject) => {
    child.on("message", (m: { type: string; value?: Outcome; error?: string }) => {
      if (m.type === "ready") ready();
      else if (m.type === "result") resolve(m.value ?? []);
      else reject(new Error(`worker failed: ${m.error}`));
    });
    child.on("exit", (code) => {
      if (code !== 0) reject(new Error(`worker exited with ${code}`));
    });
  });
  return { child, ready: Promise.race([readyPromise, result.then(() => {})]), result };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function race(
  storeKind: "sqlite" | "postgres",
  location: string,
  open: () => Promise<Store>,
): Promise<void> {
  const workers = Array.from({ length: PROCESSES }, (_, i) =>
    forkWorker({
      TW_STORE: storeKind,
      TW_LOCATION: location,
      TW_OWNER: `p${i}`,
      TW_IDS: IDS.join(","),
      TW_NOW_MS: String(NOW_MS),
    }),
  );
  cleanups.push(async () => {
    for (const w of workers) w.child.kill();
  });
  // Every worker migrated the fresh database concurrently before reporting ready.
  await Promise.all(workers.map((w) => w.ready));

  const store = await open();
  cleanups.push(() => store.close());
  await store.migrate();
  for (const id of IDS) await store.putConnection(connection(id, [credential("bot", id)]), 1_000, []);

  for (const w of workers) w.child.send({ type: "go" });
  const outcomes = await Promise.all(workers.map((w) => w.result));

  const winners = new Map<string, number[]>();
  outcomes.forEach((outcome, worker) => {
    for (const [id, kind] of outcome) {
      if (kind === "claimed") winners.set(id, [...(winners.get(id) ?? []), worker]);
      else expect(kind).toBe("held_by_other");
    }
  });
  expect([...winners.keys()].sort()).toEqual(IDS);
  expect([...winners.values()].filter((w) => w.length !== 1)).toEqual([]);
  // The store agrees: each row is held by its one winner, with the journal entry committed.
  for (const id of IDS) {
    const row = await store.getCredential({ connectionId: id, kind: "bot" });
    expect(row?.refreshInDoubt).toBe(true);
    const claim = await store.claimRefresh(
      { connectionId: id, kind: "bot" },
      { owner: "check", nowMs: NOW_MS, leaseMs: 1, freshUntilMs: Number.MAX_SAFE_INTEGER },
    );
    expect(claim).toMatchObject({ kind: "held_by_other", untilMs: NOW_MS + 30_000 });
  }
}

describe("store claims across OS processes", () => {
  it("sqlite: one file, 4 processes, each of 20 credentials claimed exactly once", async () => {
    const file = await createTmpSqlite();
    cleanups.push(() => file.remove());
    await race("sqlite", file.path, () => SqliteStore.open({ path: file.path, sealer: testSealer() }));
  });

  it("postgres: one schema, 4 processes, each of 20 credentials claimed exactly once", async () => {
    const db = await createPgSchema("store-claim.test.ts");
    cleanups.push(() => db.drop());
    await race("postgres", db.schema, () =>
      PostgresStore.open({ connectionString: db.url, schema: db.schema, sealer: testSealer(), poolMax: 2 }),
    );
  });
});
