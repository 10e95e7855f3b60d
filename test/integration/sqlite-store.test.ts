import { spawn } from "node:child_process";
import { existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Sealer } from "../../src/core/ports.js";
import { generateKey } from "../../src/crypto/key-ring.js";
import { createSealer } from "../../src/crypto/seal.js";
import { createWarden } from "../../src/engine/warden.js";
import { loadMigrations } from "../../src/store/migration-files.js";
import { openStore } from "../../src/store/open-store.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { BY_INSTALLATION_SQL, CLAIM_DUE_CLAUSE, SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { type StoreHarness, storeContract } from "../contract/store.contract.js";
import { TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import {
  alterCiphertext,
  connection,
  credential,
  rotatedSealer,
  testSealer,
} from "../helpers/store-fixtures.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

async function openSqliteHarness(sealer: Sealer): Promise<StoreHarness> {
  const file = await createTmpSqlite();
  const store = await SqliteStore.open({ path: file.path, sealer });
  await store.migrate();
  return {
    store,
    openPeer: (peerSealer, options) =>
      SqliteStore.open({ path: file.path, sealer: peerSealer, outbox: options?.outbox === true }),
    textAtRest: async () => file.bytesAtRest().toString("latin1"),
    corruptRefreshToken: async (ref) => {
      const db = new Database(file.path);
      try {
        const sealed = db
          .prepare("SELECT refresh_token_sealed FROM credentials WHERE connection_id = ? AND kind = ?")
          .pluck()
          .get(ref.connectionId, ref.kind) as string;
        db.prepare(
          "UPDATE credentials SET refresh_token_sealed = ? WHERE connection_id = ? AND kind = ?",
        ).run(alterCiphertext(sealed), ref.connectionId, ref.kind);
      } finally {
        db.close();
      }
    },
    close: async () => {
      await store.close();
      await file.remove();
    },
  };
}

storeContract("sqlite", openSqliteHarness);

/** The migrated file at `path`, opened read-only to explain the store's queries. */
async function migratedReadOnly(path: string): Promise<Database.Database> {
  const store = await SqliteStore.open({ path, sealer: testSealer() });
  await store.migrate();
  await store.close();
  return new Database(path, { readonly: true });
}

describe("sqlite: setup and errors", () => {
  let file: TmpSqlite;
  beforeEach(async () => {
    file = await createTmpSqlite();
  });
  afterEach(async () => {
    await file.remove();
  });

  it("ping fails once the file is deleted or replaced under the open store (what it writes is lost)", async () => {
    for (const change of ["deleted", "replaced"] as const) {
      const store = await SqliteStore.open({ path: file.path, sealer: testSealer() });
      await store.migrate();
      await store.ping();
      renameSync(file.path, `${file.path}.moved`);
      if (change === "replaced") writeFileSync(file.path, "");
      await expect(store.ping()).rejects.toMatchObject({
        code: "store_unavailable",
        message: expect.stringContaining(`was ${change} while this process had it open`),
      });
      await store.close();
      rmSync(file.path, { force: true });
      renameSync(`${file.path}.moved`, file.path);
    }
  });

  // SQLite makes a relative path absolute when it opens the file, so the store goes on using that
  // file after the process changes directory; ping must stat the same file, not cwd's namesake.
  it("ping, with the file given by a relative path, still passes after the process changes directory", async () => {
    const before = process.cwd();
    process.chdir(dirname(file.path));
    let store: SqliteStore | undefined;
    try {
      store = await SqliteStore.open({ path: basename(file.path), sealer: testSealer() });
      await store.migrate();
      process.chdir(tmpdir());
      await store.ping();
    } finally {
      process.chdir(before);
      await store?.close();
    }
  });

  it("opens by URL: sqlite:PATH, postgres://; refuses anything else without echoing it", async () => {
    const store = await openStore(`sqlite:${file.path}`, testSealer());
    await store.migrate();
    expect(store).toBeInstanceOf(SqliteStore);
    await store.close();
    const pg = await openStore(TEST_POSTGRES_URL, testSealer(), { poolMax: 1 });
    expect(pg).toBeInstanceOf(PostgresStore);
    await pg.close();
    for (const url of ["mysql://root:hunter2@db/x", "sqlite:", "./tokenwarden.db"]) {
      const error = await openStore(url, testSealer()).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "config_invalid" });
      expect((error as Error).message).toContain("TOKENWARDEN_DATABASE_URL");
      expect((error as Error).message).not.toContain("hunter2");
    }
  });

  it("refuses a file: URI or a query string after sqlite:, which would become part of the file's name", async () => {
    for (const url of [`sqlite:${file.path}?mode=ro`, `sqlite:file:${file.path}`, "sqlite:file:tw.db"]) {
      const error = await openStore(url, testSealer()).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "config_invalid" });
      expect((error as Error).message).toMatch(/TOKENWARDEN_DATABASE_URL.*plain file path/);
    }
    expect(existsSync(`${file.path}?mode=ro`)).toBe(false);
  });

  it("creates a new database file readable by its owner only", async () => {
    const previous = process.umask(0o022);
    try {
      const store = await SqliteStore.open({ path: file.path, sealer: testSealer() });
      await store.migrate();
      await store.close();
    } finally {
      process.umask(previous);
    }
    expect(statSync(file.path).mode & 0o777).toBe(0o600);
  });

  it("runs in WAL mode and applies each migration once however often migrate() runs", async () => {
    const stores = await Promise.all(
      Array.from({ length: 4 }, () => SqliteStore.open({ path: file.path, sealer: testSealer() })),
    );
    await Promise.all(stores.map((s) => s.migrate()));
    await Promise.all(stores.map((s) => s.close()));
    const db = new Database(file.path, { readonly: true });
    expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
    // 0006 is PostgreSQL's alone (a storage parameter); a change keeps its number in both dialects.
    const applied = [1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12];
    expect(db.prepare("SELECT version FROM schema_migrations").pluck().all()).toEqual(applied);
    db.close();
  });

  it("names the migrations a newer release applied, and a warden opening the file warns of them", async () => {
    const store = await SqliteStore.open({ path: file.path, sealer: testSealer() });
    await store.migrate();
    expect(await store.newerMigrations()).toEqual([]);
    const db = new Database(file.path);
    db.prepare("INSERT INTO schema_migrations (version, name) VALUES (?, ?)").run(99, "from_a_newer_release");
    db.close();
    expect(await store.migrate()).toEqual([]);
    expect(await store.newerMigrations()).toEqual(["0099_from_a_newer_release"]);
    await store.close();
    const warned: Array<{ obj: object; msg: string | undefined }> = [];
    const quiet = () => {};
    const warden = await createWarden({
      database: `sqlite:${file.path}`,
      encryptionKey: generateKey(),
      logger: { debug: quiet, info: quiet, error: quiet, warn: (obj, msg) => warned.push({ obj, msg }) },
      env: {},
    });
    await warden.close();
    expect(warned).toContainEqual({
      obj: { migrations: ["0099_from_a_newer_release"] },
      msg: expect.stringContaining("migrations this release does not know"),
    });
  });

  it("a store of the app's own without newerMigrations (written before it existed) still opens", async () => {
    const key = generateKey();
    const real = await SqliteStore.open({ path: file.path, sealer: createSealer(key) });
    const older = new Proxy(real, {
      get(target, name) {
        if (name === "newerMigrations") return undefined;
        const value = Reflect.get(target, name, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const quiet = () => {};
    const warden = await createWarden({
      store: older,
      encryptionKey: key,
      logger: { debug: quiet, info: quiet, warn: quiet, error: quiet },
      env: {},
    });
    await warden.close();
  });

  it("upgrading forgets the OAuth state secret older versions stored in plain text, and keeps other settings", async () => {
    // A database as version 4 of the schema left it, with the secret an older server wrote.
    const old = new Database(file.path);
    old.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT");
    for (const m of loadMigrations("sqlite").filter((m) => m.version <= 4)) {
      old.exec(m.sql);
      old.prepare("INSERT INTO schema_migrations (version, name) VALUES (?, ?)").run(m.version, m.name);
    }
    old
      .prepare("INSERT INTO settings (key, value) VALUES (?, ?), (?, ?)")
      .run("oauth_state_secret", "plaintext-secret", "api_key_sha256", "abc");
    old.close();
    const store = await SqliteStore.open({ path: file.path, sealer: testSealer() });
    await store.migrate();
    await store.close();
    expect(file.bytesAtRest().toString("latin1")).not.toContain("plaintext-secret");
    const db = new Database(file.path, { readonly: true });
    expect(db.prepare("SELECT key FROM settings ORDER BY key").pluck().all()).toEqual(["api_key_sha256"]);
    db.close();
  });

  it("reports a database locked by another process past busy_timeout as store_unavailable", async () => {
    const store = await SqliteStore.open({ path: file.path, sealer: testSealer(), busyTimeoutMs: 20 });
    await store.migrate();
    const other = new Database(file.path);
    other.exec("BEGIN IMMEDIATE");
    try {
      const error = await store
        .putConnection(connection("T1", [credential("bot", "x")]), 1, [])
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store_unavailable" });
      expect((error as Error).message).toMatch(/SQLITE_BUSY/);
      expect((error as Error).cause).toBeDefined();
    } finally {
      other.exec("ROLLBACK");
      other.close();
      await store.close();
    }
  });

  it("ends a key rotation without holding every process's writes while a reader keeps an old snapshot", async () => {
    const seed = await SqliteStore.open({ path: file.path, sealer: testSealer() });
    await seed.migrate();
    await seed.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
    await seed.close();
    // A reader that keeps its snapshot (a backup, Litestream, a sqlite3 shell left in a transaction).
    const reader = new Database(file.path);
    reader.exec("BEGIN");
    reader.prepare("SELECT count(*) FROM credentials").get();
    const store = await SqliteStore.open({ path: file.path, sealer: rotatedSealer() });
    // Another process that writes while the rotation's checkpoint runs (a server storing a refresh).
    const writer = spawn(
      process.execPath,
      [
        "-e",
        `const db = new (require("better-sqlite3"))(process.argv[1], { timeout: 5000 });
         setTimeout(() => {
           const t = Date.now();
           db.exec("BEGIN IMMEDIATE; UPDATE settings SET value = value; COMMIT");
           process.stdout.write(String(Date.now() - t));
         }, 100);`,
        file.path,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let waitedMs = "";
    writer.stdout.on("data", (chunk: Buffer) => {
      waitedMs += chunk.toString();
    });
    const exited = new Promise((resolve) => writer.once("exit", resolve));
    try {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const started = Date.now();
      expect(await store.resealBatch(100)).toMatchObject({ resealed: 1, next: null });
      // The checkpoint holds the write lock while it waits for that reader: it must give up soon.
      expect(Date.now() - started).toBeLessThan(1_000);
      await exited;
      expect(Number(waitedMs)).toBeLessThan(1_000);
    } finally {
      reader.exec("COMMIT");
      reader.close();
      await store.close();
    }
  });

  it("claims due credentials through the (provider, next_run_at_ms) index, reading one provider's rows", async () => {
    const db = await migratedReadOnly(file.path);
    try {
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN SELECT * FROM credentials ${CLAIM_DUE_CLAUSE}`)
        .all({ provider: "acme", nowMs: 1, leaseNowMs: 1, limit: 10 }) as Array<{ detail: string }>;
      const details = plan.map((p) => p.detail).join("\n");
      // Both the provider and the due time bound the index range; no sort, no table scan.
      expect(details).toContain(
        "SEARCH credentials USING INDEX credentials_provider_next_run_at (provider=? AND next_run_at_ms<?)",
      );
      expect(details).not.toMatch(/SCAN|TEMP B-TREE/);
    } finally {
      db.close();
    }
  });

  it("finds an installation's connections through the metadata expression indexes, not a scan", async () => {
    const db = await migratedReadOnly(file.path);
    try {
      const plan = db
        .prepare(`EXPLAIN QUERY PLAN ${BY_INSTALLATION_SQL}`)
        .all({ provider: "slack", teamId: "T1", enterpriseId: "E1", limit: 100 }) as Array<{
        detail: string;
      }>;
      const details = plan.map((p) => p.detail).join("\n");
      for (const key of ["team_id", "enterprise_id"]) {
        expect(details).toMatch(
          new RegExp(
            `SEARCH connections USING (COVERING )?INDEX connections_metadata_${key} \\(provider=\\? AND <expr>=\\?\\)`,
          ),
        );
      }
      // Not the provider's every connection (connections_provider_id hands them over in id order).
      expect(details).not.toMatch(/SCAN|TEMP B-TREE|connections_provider_id/);
    } finally {
      db.close();
    }
  });

  it.runIf(existsSync("/proc/self/fd"))("a refused open leaves no file handle behind", async () => {
    // Not a database: SQLite opens the file, then refuses it at the first statement.
    writeFileSync(file.path, "not a database ".repeat(100));
    const handles = () => readdirSync("/proc/self/fd").length;
    const before = handles();
    for (let i = 0; i < 10; i++) {
      const error = await SqliteStore.open({ path: file.path, sealer: testSealer() }).catch(
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: "store_unavailable" });
    }
    expect(handles()).toBe(before);
  });

  it("reports an unmigrated file and a closed store as store_unavailable", async () => {
    const store = await SqliteStore.open({ path: file.path, sealer: testSealer() });
    await expect(store.getConnection("T1")).rejects.toThrow(/no such table.*tokenwarden migrate/);
    await store.close();
    await expect(store.ping()).rejects.toMatchObject({ code: "store_unavailable" });
  });
});

// Before the duplicate-key refusal, a ring holding the old key under a new id too (`k2:OLD,OLD`, the
// old key pasted as the new one) started, and sealed new values under k2 beside those under OLD's
// own id. After the upgrade such a ring is refused; a ring that reads both ids must still be
// possible, with a new key first, so `keys rotate` can move everything off that key.
describe("sqlite: values under one key known by two ids", () => {
  let file: TmpSqlite;
  beforeEach(async () => {
    file = await createTmpSqlite();
  });
  afterEach(async () => {
    await file.remove();
  });

  it("a new key first, and the key under both ids after it: starts, and rotates all of it away", async () => {
    const old = Buffer.alloc(32, 7).toString("base64");
    const fresh = Buffer.alloc(32, 9).toString("base64");
    const before = await SqliteStore.open({ path: file.path, sealer: createSealer(old) });
    await before.migrate();
    await before.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
    await before.checkKeyRing();
    await before.close();
    // What the previous release wrote under `k2:OLD,OLD`: sealed under the id k2.
    const mistaken = await SqliteStore.open({ path: file.path, sealer: createSealer(`k2:${old}`) });
    await mistaken.putConnection(connection("T2", [credential("bot", "y")]), 2, []);
    await mistaken.close();

    const recovery = await SqliteStore.open({
      path: file.path,
      sealer: createSealer(`k3:${fresh},k2:${old},${old}`),
    });
    await recovery.checkKeyRing();
    expect(await recovery.resealBatch(100)).toMatchObject({ resealed: 2, unreadable: [] });
    await recovery.close();
    const after = await SqliteStore.open({ path: file.path, sealer: createSealer(`k3:${fresh}`) });
    try {
      await after.checkKeyRing();
      for (const id of ["T1", "T2"])
        expect(await after.getCredential({ connectionId: id, kind: "bot" })).not.toBeNull();
    } finally {
      await after.close();
    }
  });
});
