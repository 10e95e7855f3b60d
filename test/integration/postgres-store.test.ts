import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import pg from "pg";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { RefreshClaim, Sealer, UnreadableCredential } from "../../src/core/ports.js";
import { createSealer } from "../../src/crypto/seal.js";
import { openStore } from "../../src/store/open-store.js";
import {
  claimDueSql,
  completeRefreshesSql,
  pgArrayLiteral,
} from "../../src/store/postgres/batch-statements.js";
import { ChangeListener } from "../../src/store/postgres/change-listener.js";
import { byInstallationSql, PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { withSessionOptions } from "../../src/store/postgres/session-options.js";
import { type StoreHarness, storeContract } from "../contract/store.contract.js";
import { eventually } from "../helpers/eventually.js";
import { createPgSchema, type PgSchema, refuseHandBacks, TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import {
  alterCiphertext,
  connection,
  credential,
  event,
  rotatedSealer,
  testSealer,
  tokens,
} from "../helpers/store-fixtures.js";

let counter = 0;

async function openPostgresHarness(sealer: Sealer): Promise<StoreHarness> {
  const db = await createPgSchema(`postgres-store.test.ts#${++counter}`);
  const open = (s: Sealer, options?: { outbox?: boolean }) =>
    PostgresStore.open({
      connectionString: db.url,
      schema: db.schema,
      sealer: s,
      poolMax: 3,
      outbox: options?.outbox === true,
    });
  const store = await open(sealer);
  await store.migrate();
  return {
    store,
    openPeer: open,
    textAtRest: async () => {
      const tables = ["connections", "credentials", "events", "provider_states"];
      const texts = await Promise.all(
        tables.map(async (t) => {
          const { rows } = await db.admin.query(`SELECT t::text AS row FROM "${db.schema}".${t} t`);
          return rows.map((r: { row: string }) => r.row).join("\n");
        }),
      );
      return texts.join("\n");
    },
    corruptRefreshToken: async (ref) => {
      const t = `"${db.schema}".credentials`;
      const { rows } = await db.admin.query<{ sealed: string }>(
        `SELECT refresh_token_sealed AS sealed FROM ${t} WHERE connection_id = $1 AND kind = $2`,
        [ref.connectionId, ref.kind],
      );
      await db.admin.query(
        `UPDATE ${t} SET refresh_token_sealed = $3 WHERE connection_id = $1 AND kind = $2`,
        [ref.connectionId, ref.kind, alterCiphertext(rows[0]?.sealed ?? "")],
      );
    },
    close: async () => {
      await store.close();
      await db.drop();
    },
  };
}

storeContract("postgres", openPostgresHarness);

/** Stores connection T1 (one bot credential) and takes its refresh claim at 2 s, leased 30 s. */
async function claimT1(store: PostgresStore): Promise<RefreshClaim> {
  await store.putConnection(connection("T1", [credential("bot", "x")]), 1_000, []);
  const r = await store.claimRefresh(
    { connectionId: "T1", kind: "bot" },
    { owner: "o", nowMs: 2_000, leaseMs: 30_000, freshUntilMs: Number.MAX_SAFE_INTEGER },
  );
  if (r.kind !== "claimed") throw new Error(`not claimed: ${r.kind}`);
  return r.claim;
}

/** In a describe: a schema for each test that asks (`await freshSchema(name)`), dropped after it. */
function schemaPerTest(): (name: string) => Promise<PgSchema> {
  let db: PgSchema | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });
  return async (name) => {
    db = await createPgSchema(name);
    return db;
  };
}

/** The store on `db`'s schema, migrated. */
async function openMigrated(db: PgSchema): Promise<PostgresStore> {
  const store = await PostgresStore.open({
    connectionString: db.url,
    schema: db.schema,
    sealer: testSealer(),
  });
  await store.migrate();
  return store;
}

describe("postgres: migrations and setup", () => {
  const freshSchema = schemaPerTest();

  // An operator finds (and, in an incident, terminates) tokenwarden's sessions in pg_stat_activity
  // by application_name. The main pool and the renewal pool set none, so a filter on 'tokenwarden%'
  // found only the listener and batch sessions, and every query and renewal session looked foreign.
  it("names every session it opens after tokenwarden, unless the URL names them", async () => {
    const db = await freshSchema("postgres-store.test.ts#application-name");
    const { url, schema } = db;
    const names = async (store: PostgresStore) => {
      const claim = await claimT1(store);
      expect(await store.renewClaim(claim, 3_000, 30_000)).toBe(true);
      await store.releaseClaim(claim);
      const { rows } = await db.admin.query<{ name: string }>(
        "SELECT DISTINCT application_name AS name FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
        [`%"${schema}"%`],
      );
      return rows.map((r) => r.name).sort();
    };
    const store = await PostgresStore.open({ connectionString: url, schema, sealer: testSealer() });
    try {
      await store.migrate();
      for (const name of await names(store)) expect(name).toMatch(/^tokenwarden/);
    } finally {
      await store.close();
    }
    const named = await PostgresStore.open({
      connectionString: `${url}${url.includes("?") ? "&" : "?"}application_name=billing-tw`,
      schema,
      sealer: testSealer(),
    });
    try {
      await named.deleteConnection("T1");
      expect(await names(named)).toContain("billing-tw");
    } finally {
      await named.close();
    }
  });

  it("lets 4 migrators race on one fresh schema; all succeed, each version applied once", async () => {
    const db = await freshSchema("postgres-store.test.ts#migrators");
    const { url, schema } = db;
    const stores = await Promise.all(
      Array.from({ length: 4 }, () =>
        PostgresStore.open({ connectionString: url, schema, sealer: testSealer(), poolMax: 1 }),
      ),
    );
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      const { rows } = await db.admin.query(
        `SELECT version FROM "${schema}".schema_migrations ORDER BY version`,
      );
      expect(rows.map((r: { version: number }) => r.version)).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
      ]);
      await stores[0]?.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
      expect((await stores[3]?.getConnection("T1"))?.status).toBe("active");
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("upgrades to the provider-led due index while a previous version's transaction holds a row lock", async () => {
    const db = await freshSchema("postgres-store.test.ts#upgrade-0007");
    const { url, schema } = db;
    const q = `"${schema}"`;
    const store = await PostgresStore.open({ connectionString: url, schema, sealer: testSealer() });
    const old = new pg.Client({ connectionString: url });
    await old.connect();
    try {
      await store.migrate();
      await store.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
      // Back to version 6, as a deployment still running the previous version has it.
      await db.admin.query(`DROP INDEX ${q}.credentials_provider_next_run_at`);
      await db.admin.query(
        `CREATE INDEX credentials_next_run_at ON ${q}.credentials (next_run_at_ms) WHERE next_run_at_ms IS NOT NULL`,
      );
      await db.admin.query(`DELETE FROM ${q}.schema_migrations WHERE version = 7`);
      // An instance of the previous version: a row locked, its update still to come.
      await old.query("BEGIN");
      await old.query(`SELECT 1 FROM ${q}.credentials WHERE connection_id = 'T1' FOR UPDATE`);
      const migrating = store.migrate();
      await eventually(
        async () =>
          (
            await db?.admin.query(
              "SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted AND relation = $1::regclass",
              [`${q}.credentials`],
            )
          )?.rows[0]?.n,
        (n) => n === 1,
        { what: "the migration to wait for the table" },
      );
      // Locking the table up front, the migration waits behind this transaction instead of deadlocking it.
      await old.query(`UPDATE ${q}.credentials SET version = version + 1 WHERE connection_id = 'T1'`);
      await old.query("COMMIT");
      await migrating;
      const { rows } = await db.admin.query(
        "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'credentials' ORDER BY 1",
        [schema],
      );
      expect(rows.map((r: { indexname: string }) => r.indexname)).toEqual([
        "credentials_failing_due",
        "credentials_pkey",
        "credentials_provider_next_run_at",
      ]);
    } finally {
      await old.end();
      await store.close();
    }
  });

  // A migration that locks a table waits for every transaction using it, and every query arriving
  // meanwhile queues behind it: a backup's hour-long transaction would stall every instance.
  it("gives up a migration that waits on a table lock past its timeout, applying nothing; run again, it applies", async () => {
    const db = await freshSchema("postgres-store.test.ts#migration-lock-timeout");
    const { url, schema } = db;
    const q = `"${schema}"`;
    const store = await PostgresStore.open({
      connectionString: url,
      schema,
      sealer: testSealer(),
      migrationLockTimeoutMs: 300,
    });
    const backup = new pg.Client({ connectionString: url });
    await backup.connect();
    try {
      await store.migrate();
      await store.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
      // Back to version 6, whose next migration locks the credentials table.
      await db.admin.query(`DROP INDEX ${q}.credentials_provider_next_run_at`);
      await db.admin.query(
        `CREATE INDEX credentials_next_run_at ON ${q}.credentials (next_run_at_ms) WHERE next_run_at_ms IS NOT NULL`,
      );
      await db.admin.query(`DELETE FROM ${q}.schema_migrations WHERE version = 7`);
      // A long read (a backup's snapshot) holds the table.
      await backup.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await backup.query(`SELECT count(*) FROM ${q}.credentials`);
      const error = await store.migrate().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store_unavailable" });
      expect((error as Error).message).toContain("stayed locked");
      const { rows } = await db.admin.query(`SELECT version FROM ${q}.schema_migrations WHERE version = 7`);
      expect(rows).toEqual([]); // nothing applied
      expect((await store.getCredential({ connectionId: "T1", kind: "bot" }))?.kind).toBe("bot");
      await backup.query("COMMIT");
      expect(await store.migrate()).toEqual(["0007_due_index_by_provider"]);
    } finally {
      await backup.end();
      await store.close();
    }
  });

  it("refuses a migration lock timeout that is not whole milliseconds", async () => {
    await expect(
      PostgresStore.open({
        connectionString: TEST_POSTGRES_URL,
        sealer: testSealer(),
        migrationLockTimeoutMs: 0.5,
      }),
    ).rejects.toMatchObject({ code: "config_invalid" });
  });

  it("plans the batch statements, generically, without reading the whole table", async () => {
    // The refresher's lane runs them with plan_cache_mode=force_generic_plan: a plan that depended
    // on the parameters' values (LIMIT $2, the batch's size) would be guessed, and a guess that
    // chose a hash join would read every credential at every claim.
    const db = await freshSchema("postgres-store.test.ts#batch-plans");
    const store = await PostgresStore.open({
      connectionString: db.url,
      schema: db.schema,
      sealer: testSealer(),
    });
    const c = await db.admin.connect();
    try {
      await store.migrate();
      const q = `"${db.schema}"`;
      await c.query(
        `INSERT INTO ${q}.connections (id, provider, status, created_at_ms, updated_at_ms)
         SELECT 'T' || g, 'slack', 'active', 0, 0 FROM generate_series(1, 50000) g`,
      );
      await c.query(
        `INSERT INTO ${q}.credentials (connection_id, kind, provider, access_token_sealed, refresh_token_sealed,
           token_type, issued_at_ms, status, version, refresh_due_at_ms, next_run_at_ms)
         SELECT 'T' || g, 'bot', CASE WHEN g % 4 = 0 THEN 'acme' ELSE 'slack' END, 'a', 'r', 'bot', 0, 'active', 1, g, g
         FROM generate_series(1, 50000) g`,
      );
      await c.query(`ANALYZE ${q}.credentials`);
      await c.query("BEGIN");
      await c.query("SET LOCAL plan_cache_mode = force_generic_plan");
      const t = { credentials: `${q}.credentials`, events: `${q}.events` };
      const plan = async (name: string, sql: string, args: string) => {
        await c.query(`PREPARE ${name} AS ${sql}`);
        const { rows } = await c.query(`EXPLAIN EXECUTE ${name}(${args})`);
        return rows.map((r: { "QUERY PLAN": string }) => r["QUERY PLAN"]).join("\n");
      };
      // The due index leads with the provider: a claim reads that provider's due rows only, however
      // many of the others' are due earlier (here acme's are a quarter, interleaved with slack's).
      const claim = await plan("claim_due", claimDueSql(t), "100, 64, 'owner', 15000, 'acme', 100");
      expect(claim).toContain("Index Scan using credentials_provider_next_run_at");
      expect(claim).toMatch(/Index Cond: \(\(provider = \$5\) AND \(next_run_at_ms <= \$1\)\)/);
      expect(claim).toContain("Tid Scan");
      expect(claim).not.toContain("Seq Scan");
      const { rows: analyzed } = await c.query(
        "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE claim_due(50000, 64, 'owner', 15000, 'acme', 50000)",
      );
      const run = analyzed.map((r: { "QUERY PLAN": string }) => r["QUERY PLAN"]).join("\n");
      expect(run).not.toContain("Rows Removed by Filter"); // not one slack row read and passed over
      const batch = `'[{"connection_id":"T7","kind":"bot","claim_id":"c","access":"a","refresh":"r","scopes":[],"expires_at_ms":1,"now_ms":1,"provider_data":{},"due_ms":1,"event_type":"refreshed","event_at_ms":1,"event_data":{}}]'`;
      const complete = await plan("complete", completeRefreshesSql(t), `${batch}, 'ch', 'p'`);
      expect(complete).toContain("Index Scan using credentials_pkey");
      expect(complete).not.toContain("Seq Scan on credentials");
      await c.query("ROLLBACK");
    } finally {
      c.release();
      await store.close();
    }
  });

  it("finds an installation's connections through the metadata expression indexes, not a scan", async () => {
    const db = await freshSchema("postgres-store.test.ts#by-installation-plan");
    const store = await openMigrated(db);
    try {
      const q = `"${db.schema}"`;
      // 100 orgs of 200 workspaces each, and as many connections of another provider with no metadata.
      await db.admin.query(
        `INSERT INTO ${q}.connections (id, provider, status, metadata, created_at_ms, updated_at_ms)
         SELECT 'c' || g, CASE WHEN g % 2 = 0 THEN 'slack' ELSE 'acme' END, 'active',
           CASE WHEN g % 2 = 0 THEN jsonb_build_object('team_id', 'T' || g, 'enterprise_id', 'E' || (g % 100))
           ELSE '{}'::jsonb END, 0, 0
         FROM generate_series(1, 40000) g`,
      );
      await db.admin.query(`ANALYZE ${q}.connections`);
      const { rows } = await db.admin.query(
        `EXPLAIN ${byInstallationSql({ connections: `${q}.connections` })}`,
        ["slack", "T8", "E8", 100],
      );
      const plan = rows.map((r: { "QUERY PLAN": string }) => r["QUERY PLAN"]).join("\n");
      expect(plan).toMatch(/Index Scan (using|on) connections_metadata_team_id/);
      expect(plan).toMatch(/Index Scan (using|on) connections_metadata_enterprise_id/);
      expect(plan).not.toContain("Seq Scan");
    } finally {
      await store.close();
    }
  });

  it("keeps the batch lane's generic plans when the URL sets session options of its own", async () => {
    const url = new URL(TEST_POSTGRES_URL);
    const options = "-c statement_timeout=1234 -c plan_cache_mode=force_custom_plan";
    url.searchParams.set("options", options);
    // Also the socket form, no host before the path (`new URL` refuses it; pg takes it).
    const hostless = `postgres://${url.username}@/${url.pathname.slice(1)}?host=${url.hostname}&port=${url.port}&options=${encodeURIComponent(options)}`;
    for (const connectionString of [url.toString(), hostless]) {
      const client = new pg.Client(
        withSessionOptions({ connectionString }, "-c plan_cache_mode=force_generic_plan"),
      );
      await client.connect();
      try {
        const show = async (name: string) => (await client.query(`SHOW ${name}`)).rows[0]?.[name];
        expect(await show("statement_timeout")).toBe("1234ms"); // the URL's own still apply
        expect(await show("plan_cache_mode")).toBe("force_generic_plan"); // and ours win
      } finally {
        await client.end();
      }
    }
    // Without options= in the URL, the URL is left as it was; PGOPTIONS, which pg reads only when the
    // config sets no options, comes first.
    const saved = process.env["PGOPTIONS"];
    process.env["PGOPTIONS"] = "-c work_mem=8MB";
    try {
      expect(withSessionOptions({ connectionString: TEST_POSTGRES_URL }, "-c x=1")).toEqual({
        connectionString: TEST_POSTGRES_URL,
        options: "-c work_mem=8MB -c x=1",
      });
    } finally {
      if (saved === undefined) delete process.env["PGOPTIONS"];
      else process.env["PGOPTIONS"] = saved;
    }
  });

  it("takes the schema from ?schema= in the database URL", async () => {
    const db = await freshSchema("postgres-store.test.ts#url-schema");
    const url = new URL(db.url);
    url.searchParams.set("schema", db.schema);
    const store = await openStore(url.toString(), testSealer(), { poolMax: 1 });
    try {
      await store.migrate();
      const { rows } = await db.admin.query(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'credentials'",
        [db.schema],
      );
      expect(rows[0]?.n).toBe(1);
    } finally {
      await store.close();
    }
  });

  it("takes ?schema= from a URL that names its host in the query (a Unix socket's form), too", async () => {
    const db = await freshSchema("postgres-store.test.ts#url-schema-host-param");
    const tcp = new URL(db.url);
    // `user@/db?host=…` is how a socket directory is given (Cloud SQL's /cloudsql/…); WHATWG URL
    // refuses it, pg does not. The same form with a TCP host reaches the test server.
    const url = `postgres://${tcp.username}@${tcp.pathname}?host=${tcp.hostname}&port=${tcp.port}&schema=${db.schema}`;
    const store = await openStore(url, testSealer(), { poolMax: 1 });
    try {
      // Unmigrated, so nothing is created anywhere if the schema were missed: the error names the table.
      const error = await store.getConnection("T1").catch((e: unknown) => e);
      expect((error as Error).message).toContain(`"${db.schema}.connections"`);
    } finally {
      await store.close();
    }
  });

  /**
   * A role of its own for one test (roles are global to the server: named after the test's schema,
   * dropped with it), and the database URL that logs in as it.
   */
  async function withRole(
    pgSchema: PgSchema,
    run: (role: string, url: string) => Promise<void>,
  ): Promise<void> {
    const role = `${pgSchema.schema}_app`;
    await pgSchema.admin.query(`CREATE ROLE "${role}" LOGIN`);
    const url = new URL(pgSchema.url);
    url.username = role;
    try {
      await run(role, url.toString());
    } finally {
      await pgSchema.admin.query(`DROP SCHEMA IF EXISTS "${pgSchema.schema}" CASCADE`);
      await pgSchema.admin.query(`DROP OWNED BY "${role}"`);
      await pgSchema.admin.query(`DROP ROLE "${role}"`);
    }
  }

  it("migrates a schema an administrator created for its role, without CREATE on the database", async () => {
    const db = await freshSchema("postgres-store.test.ts#provisioned-schema");
    const { schema, admin } = db;
    await withRole(db, async (role, url) => {
      await admin.query(`CREATE SCHEMA "${schema}" AUTHORIZATION "${role}"`);
      const store = await PostgresStore.open({
        connectionString: url,
        schema,
        sealer: testSealer(),
        poolMax: 1,
      });
      try {
        expect(await store.migrate()).toContain("0001_init");
        await store.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
        expect((await store.getConnection("T1"))?.status).toBe("active");
      } finally {
        await store.close();
      }
    });
  });

  it("starts as a role that may only use the tables, once the schema was migrated ahead of it", async () => {
    const db = await freshSchema("postgres-store.test.ts#dml-only-role");
    const { schema, admin } = db;
    await (await openMigrated(db)).close();
    await withRole(db, async (role, url) => {
      await admin.query(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
      await admin.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO "${role}"`,
      );
      await admin.query(`GRANT USAGE ON ALL SEQUENCES IN SCHEMA "${schema}" TO "${role}"`);
      const store = await PostgresStore.open({
        connectionString: url,
        schema,
        sealer: testSealer(),
        poolMax: 1,
      });
      try {
        expect(await store.migrate()).toEqual([]);
        await store.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
        expect((await store.getConnection("T1"))?.status).toBe("active");
      } finally {
        await store.close();
      }
    });
  });

  // A database the network stops answering must fail calls, not hold them for the system's TCP
  // timeouts (two minutes to connect on Linux) or for as long as a full pool stays full.
  it("a server that accepts but never answers fails open with store_unavailable at the connect timeout", async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    try {
      const { port } = silent.address() as AddressInfo;
      const opening = PostgresStore.open({
        connectionString: `postgres://tw@127.0.0.1:${port}/tw`,
        sealer: testSealer(),
        connectTimeoutMs: 200,
      });
      await expect(opening).rejects.toMatchObject({ code: "store_unavailable" });
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  /** A store whose one pooled connection is held by an update stuck on a row lock `holder` keeps. */
  async function storeWithBusyPool(name: string, options: { connectTimeoutMs?: number } = {}) {
    const schema = await freshSchema(`postgres-store.test.ts#${name}`);
    const store = await PostgresStore.open({
      connectionString: schema.url,
      schema: schema.schema,
      sealer: testSealer(),
      poolMax: 1,
      ...options,
    });
    await store.migrate();
    await store.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
    const holder = await schema.admin.connect();
    await holder.query("BEGIN");
    await holder.query(`SELECT 1 FROM "${schema.schema}".connections WHERE id = 'T1' FOR UPDATE`);
    // Takes the pool's one connection and waits on the lock; the next call queues behind it.
    const inFlight = store.updateMetadata("T1", { team: "a" }, 2);
    return { schema, store, holder, inFlight };
  }

  it("a call waiting for a pooled connection past the connect timeout fails with store_unavailable", async () => {
    const { store, holder, inFlight } = await storeWithBusyPool("pool-wait-timeout", {
      connectTimeoutMs: 300,
    });
    try {
      const queued = await store.getConnection("T1").catch((error: unknown) => error);
      expect(queued).toMatchObject({ code: "store_unavailable" });
      await holder.query("COMMIT");
      expect(await inFlight).toBe(true);
      expect((await store.getConnection("T1"))?.metadata).toMatchObject({ team: "a" });
    } finally {
      holder.release();
      await store.close();
    }
  });

  it("close() fails the calls still waiting for a pooled connection with store_unavailable, never leaves them pending", async () => {
    const { schema, store, holder, inFlight } = await storeWithBusyPool("close-queued");
    try {
      await eventually(
        async () =>
          (
            await schema.admin.query<{ n: number }>(
              "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
              [`%${schema.schema}%`],
            )
          ).rows[0]?.n ?? 0,
        (n) => n > 0,
        { what: "the update to wait on the row lock" },
      );
      let queuedOutcome: unknown = "pending";
      const queued = store.getConnection("T1").then(
        () => "resolved",
        (error: unknown) => error,
      );
      void queued.then((outcome) => {
        queuedOutcome = outcome;
      });
      const closing = store.close();
      await holder.query("COMMIT");
      expect(await inFlight).toBe(true);
      await closing;
      await new Promise((resolve) => setImmediate(resolve));
      expect(queuedOutcome).toMatchObject({ code: "store_unavailable" });
    } finally {
      holder.release();
    }
  });

  it("counts everything as changed while its listener is down, and hears peers again after reconnecting", async () => {
    const db = await freshSchema("postgres-store.test.ts#listener");
    const open = () =>
      PostgresStore.open({
        connectionString: db?.url ?? "",
        schema: db?.schema ?? "",
        sealer: testSealer(),
        poolMax: 1,
      });
    const store = await open();
    const peer = await open();
    const ref = { connectionId: "T1", kind: "bot" as const };
    try {
      await store.migrate();
      await peer.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
      // epoch 1 (connected) + 1 (the peer's notification)
      const s0 = await eventually(
        () => store.changeStamp(ref),
        (s) => s >= 2,
        { what: "the first notification" },
      );
      const killed = await db.admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tokenwarden-listener' AND query LIKE $1",
        [`% "${db.schema}.credentials"%`],
      );
      // Both stores' listeners (this one's and the peer's).
      expect(killed.rows).toEqual([{ pg_terminate_backend: true }, { pg_terminate_backend: true }]);
      await eventually(
        () => store.changeStamp(ref),
        (s) => s !== s0,
        { what: "the stamp to move when the listener dropped" },
      );
      // Reconnected: stamps hold still again until a peer changes the credential.
      const settled = await eventually(
        () => [store.changeStamp(ref), store.changeStamp(ref)],
        ([a, b]) => a === b,
        { what: "the listener to reconnect" },
      );
      await peer.setCredentialStatus(
        "T1",
        ["bot"],
        { status: "needs_reauth", reason: "token_revoked", lastError: null },
        2,
        [],
      );
      await eventually(
        () => store.changeStamp(ref),
        (s) => s !== settled[0],
        { what: "a notification after reconnecting" },
      );
    } finally {
      await store.close();
      await peer.close();
    }
  });

  it("announces a batch in one notification: peers see every credential in it move, and no other", async () => {
    const db = await freshSchema("postgres-store.test.ts#batch-notify");
    const open = () =>
      PostgresStore.open({
        connectionString: db?.url ?? "",
        schema: db?.schema ?? "",
        sealer: testSealer(),
        poolMax: 2,
      });
    const store = await open();
    const peer = await open();
    try {
      await store.migrate();
      // Ids long enough that 70 keys overflow one NOTIFY payload: that batch must fall back to "everything".
      const ids = Array.from({ length: 72 }, (_, i) => `T${String(i).padStart(3, "0")}-${"x".repeat(120)}`);
      for (const id of ids)
        await peer.putConnection(connection(id, [credential("bot", id.slice(0, 4))]), 1, []);
      const ref = (id: string) => ({ connectionId: id, kind: "bot" as const });
      const complete = async (batch: string[], nowMs: number) => {
        const claims = await Promise.all(
          batch.map((id) =>
            peer.claimRefresh(ref(id), { owner: "p", nowMs, leaseMs: 30_000, freshUntilMs: 1e15 }),
          ),
        );
        const done = await peer.completeRefreshes(
          claims.map((c, i) => {
            if (c.kind !== "claimed") throw new Error(`not claimed: ${c.kind}`);
            return {
              claim: c.claim,
              result: { tokens: tokens(`n${nowMs}-${i}`), providerData: {}, refreshDueAtMs: 9_000 },
              nowMs,
              event: event(batch[i] ?? "", "refreshed", nowMs),
            };
          }),
        );
        expect(done.every((o) => o.kind === "stored")).toBe(true);
      };
      const stamps = () => ids.map((id) => store.changeStamp(ref(id)));
      const settled = await eventually(
        async () => {
          const a = stamps();
          await new Promise((r) => setTimeout(r, 100));
          return [a, stamps()];
        },
        ([a, b]) => JSON.stringify(a) === JSON.stringify(b),
        { what: "the imports' notifications to settle" },
      );
      const before = settled[1] ?? [];
      await complete([ids[0] ?? "", ids[1] ?? "", ids[2] ?? ""], 2);
      const after = await eventually(
        () => stamps(),
        (s) => s[0] !== before[0] && s[1] !== before[1] && s[2] !== before[2],
        { what: "the batch's three stamps to move" },
      );
      expect(after.slice(3)).toEqual(before.slice(3)); // one notification listing three keys, nothing else
      await complete(ids.slice(0, 70), 3);
      await eventually(
        () => stamps(),
        (s) => s.every((v, i) => v !== after[i]),
        { what: "every stamp to move after an oversized batch" },
      );
    } finally {
      await store.close();
      await peer.close();
    }
  });

  it("reports an unmigrated schema as store_unavailable with a hint", async () => {
    const db = await freshSchema("postgres-store.test.ts#unmigrated");
    const store = await PostgresStore.open({
      connectionString: db.url,
      schema: db.schema,
      sealer: testSealer(),
      poolMax: 1,
    });
    try {
      const error = await store.getConnection("T1").catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "store_unavailable" });
      expect((error as Error).message).toMatch(/42P01.*tokenwarden migrate/);
    } finally {
      await store.close();
    }
  });

  it("fails to open with store_unavailable when PostgreSQL is unreachable", async () => {
    const error = await PostgresStore.open({
      connectionString: "postgres://postgres@127.0.0.1:1/none",
      sealer: testSealer(),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "store_unavailable" });
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });

  it("refuses a postgres:// URL the driver cannot read as config_invalid naming the variable, never echoing it", async () => {
    for (const url of ["postgres://app:hunter2@127.0.0.1:99999/x", "postgres://app:hunter2@[::1/x"]) {
      const error = await openStore(url, testSealer(), { poolMax: 1 }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "config_invalid" });
      expect((error as Error).message).toContain("TOKENWARDEN_DATABASE_URL");
      expect((error as Error).message).not.toContain("hunter2");
      // Nor anywhere a logger serialising the error (causes, own properties) would reach.
      expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).not.toContain("hunter2");
      expect((error as Error).cause).toBeUndefined();
    }
  });

  it("rejects a schema name that is not a plain identifier", async () => {
    await expect(
      PostgresStore.open({
        connectionString: "postgres://x@127.0.0.1:1/x",
        schema: 'a"; drop',
        sealer: testSealer(),
      }),
    ).rejects.toMatchObject({ code: "config_invalid" });
  });
});

describe("postgres: array literals for the batch statements", () => {
  it("round-trips text and numbers through PostgreSQL exactly, whatever the characters", async () => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      const texts = [
        "plain",
        'a"quote',
        "back\\slash",
        '\\"both',
        "NULL",
        "",
        "comma,brace}{",
        "naïve ✓",
        " spaced ",
        null,
      ];
      const { rows } = await client.query<{ a: Array<string | null> }>("SELECT $1::text[] AS a", [
        pgArrayLiteral(texts),
      ]);
      expect(rows[0]?.a).toEqual(texts);
      const numbers = [0, 1_700_000_000_000, -5, null];
      const { rows: n } = await client.query<{ a: Array<string | null> }>("SELECT $1::bigint[] AS a", [
        pgArrayLiteral(numbers),
      ]);
      expect(n[0]?.a).toEqual(["0", "1700000000000", "-5", null]);
      expect(pgArrayLiteral([])).toBe("{}");
    } finally {
      await client.end();
    }
  });
});

describe("postgres: claimDue when parking an unreadable credential fails", () => {
  const freshSchema = schemaPerTest();

  it("still hands out the batch's other claims, and reports the unparked one due when its lease ends", async () => {
    const db = await freshSchema("postgres-store.test.ts#park-fails");
    const open = (sealer: Sealer) =>
      PostgresStore.open({ connectionString: db?.url ?? "", schema: db?.schema ?? "", sealer });
    const store = await open(testSealer());
    const rotated = await open(rotatedSealer());
    try {
      await store.migrate();
      await store.putConnection(
        connection("T1", [credential("bot", "T1", { refreshDueAtMs: 6_000 })]),
        1,
        [],
      );
      // T2's refresh token is sealed with a key the store does not hold, and due first.
      await rotated.putConnection(
        connection("T2", [credential("bot", "T2", { refreshDueAtMs: 5_000 })]),
        1,
        [],
      );
      // PostgreSQL refuses the write that would park T2 (hands its claim back).
      const q = `"${db.schema}"`;
      await refuseHandBacks(db, "T2");
      const unreadable: UnreadableCredential[] = [];
      const claims = await store.claimDue({
        owner: "r",
        nowMs: 10_000,
        leaseMs: 30_000,
        limit: 10,
        provider: "slack",
        onUnreadable: (u) => unreadable.push(u),
      });
      expect(claims.map((c) => c.ref.connectionId)).toEqual(["T1"]);
      expect(unreadable).toEqual([expect.objectContaining({ ref: { connectionId: "T2", kind: "bot" } })]);
      expect(unreadable[0]?.retryAtMs).toBe(40_000); // its claim lapses then; nothing parked it
      expect(await rotated.getCredential({ connectionId: "T2", kind: "bot" })).toMatchObject({
        claimUntilMs: 40_000,
        refreshInDoubt: true,
      });
      const row = async () =>
        (
          await db?.admin.query(
            `SELECT claim_id, next_run_at_ms::float8 AS next_run FROM ${q}.credentials WHERE connection_id = 'T2'`,
          )
        )?.rows[0] as { claim_id: string | null; next_run: number };
      // Reported still held, so the caller can hand it back once the store takes writes again.
      expect(unreadable[0]?.unparked).toEqual({
        ref: { connectionId: "T2", kind: "bot" },
        owner: "r",
        claimId: (await row()).claim_id,
      });
      await db.admin.query(`DROP TRIGGER refuse_hand_back ON ${q}.credentials`);
      await store.releaseClaim(unreadable[0]?.unparked as RefreshClaim);
      expect(await row()).toEqual({ claim_id: null, next_run: 5_000 });
      expect(await rotated.getCredential({ connectionId: "T2", kind: "bot" })).toMatchObject({
        claimUntilMs: null,
        refreshInDoubt: false,
      });
    } finally {
      await rotated.close();
      await store.close();
    }
  });
});

describe("postgres: the change listener on a connection that goes silent", () => {
  it("finds out by heartbeat and counts everything as changed, then listens again", async () => {
    // A proxy in front of PostgreSQL that can stop forwarding without closing anything: what a NAT
    // or firewall dropping an idle connection looks like from both ends (no FIN, no RST).
    const target = new URL(TEST_POSTGRES_URL);
    const sockets: Array<{ client: Socket; upstream: Socket }> = [];
    let silent = false;
    const proxy = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      sockets.push({ client, upstream });
      client.on("data", (d) => silent || upstream.write(d));
      upstream.on("data", (d) => silent || client.write(d));
      client.on("error", () => {});
      upstream.on("error", () => {});
    });
    proxy.listen(0, "127.0.0.1");
    await once(proxy, "listening");
    const url = new URL(TEST_POSTGRES_URL);
    url.host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const listener = await ChangeListener.start({ connectionString: url.toString() }, "tw_silent_test", {
      heartbeatMs: 50,
      heartbeatTimeoutMs: 200,
    });
    try {
      const before = listener.stamp("k");
      expect(listener.stamp("k")).toBe(before); // connected: nothing changed
      silent = true;
      for (const { client, upstream } of sockets.splice(0)) {
        client.pause();
        upstream.pause();
      }
      await eventually(
        () => listener.stamp("k"),
        (s) => s !== before,
        { what: "the listener to notice it hears nothing" },
      );
      silent = false; // new connections go through again
      const deaf = listener.stamp("k");
      await eventually(
        () => {
          // While deaf every read moves the stamp; listening again, two reads agree.
          const first = listener.stamp("k");
          return first === listener.stamp("k") && first !== deaf;
        },
        (listening) => listening,
        { what: "the listener to reconnect (its stamp stands still again)" },
      );
    } finally {
      await listener.close();
      for (const { client, upstream } of sockets) {
        client.destroy();
        upstream.destroy();
      }
      proxy.close();
    }
  });
});

/** NotificationResponse, the message type of a NOTIFY delivered to a listening session. */
const NOTIFICATION = 0x41;

/**
 * A TCP proxy in front of PostgreSQL that passes each message of the server's on only when `pass`
 * says so (`ownPid`: the session's own backend pid, from its BackendKeyData): a pooler's view of
 * which notifications reach a client. Returns a connection string through it (to `base`'s
 * database), and `cut()`, which drops every connection and leaves new ones accepted but never
 * answered: a database the network stopped reaching.
 */
async function proxiedPostgres(
  pass: (message: Buffer, ownPid: number) => boolean,
  base = TEST_POSTGRES_URL,
): Promise<{ url: string; cut(): void; close(): void }> {
  const target = new URL(TEST_POSTGRES_URL);
  const sockets: Socket[] = [];
  let silent = false;
  const proxy = createServer((client) => {
    sockets.push(client);
    client.on("error", () => {});
    if (silent) return;
    const upstream = connect(Number(target.port || 5432), target.hostname);
    sockets.push(upstream);
    client.on("data", (d) => upstream.write(d));
    let pending = Buffer.alloc(0);
    let ownPid = -1;
    upstream.on("data", (d: Buffer) => {
      pending = Buffer.concat([pending, d]);
      while (pending.length >= 5) {
        const size = 1 + pending.readUInt32BE(1);
        if (pending.length < size) break;
        const message = pending.subarray(0, size);
        if (message[0] === 0x4b) ownPid = message.readInt32BE(5); // 'K': BackendKeyData
        if (pass(message, ownPid)) client.write(message);
        pending = pending.subarray(size);
      }
    });
    upstream.on("error", () => {});
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  const url = new URL(base);
  url.host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  return {
    url: url.toString(),
    cut() {
      silent = true;
      for (const socket of sockets.splice(0)) socket.destroy();
    },
    close() {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    },
  };
}

describe("postgres: the change listener behind a pooler that passes no notification on", () => {
  // PgBouncer in transaction mode answers queries but runs a LISTEN on a server connection it lends
  // to others: notifications never reach the client. Such a listener must read as deaf (every stamp
  // changed, so caches read the store), never as listening while another process's rotation goes
  // unseen for hours. The proxy here drops the server's NotificationResponse messages ('A').
  it("starts deaf and stays deaf, its stamps never standing still; a direct one listens", async () => {
    const proxy = await proxiedPostgres((message) => message[0] !== NOTIFICATION);
    const timings = { heartbeatMs: 50, heartbeatTimeoutMs: 200 };
    const pooled = await ChangeListener.start({ connectionString: proxy.url }, "tw_pooler_test", timings);
    const direct = await ChangeListener.start(
      { connectionString: TEST_POSTGRES_URL },
      "tw_pooler_test",
      timings,
    );
    try {
      expect(pooled.deaf).toBe(true);
      expect(direct.deaf).toBe(false);
      const before = direct.stamp("k");
      for (let beat = 0; beat < 4; beat++) {
        // Through every reconnect attempt, a read through the pooler never repeats a stamp.
        expect(pooled.stamp("k")).not.toBe(pooled.stamp("k"));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(direct.stamp("k")).toBe(before); // heartbeats that come back change nothing
      expect(direct.deaf).toBe(false);
    } finally {
      await pooled.close();
      await direct.close();
      proxy.close();
    }
  });
});

describe("postgres: the change listener behind a pooler that hands its LISTEN session back", () => {
  // PgBouncer in transaction mode reuses server connections last-in first-out: a lightly loaded
  // listener's NOTIFY often runs on the very server connection that holds its LISTEN, and PostgreSQL
  // delivers a session its own notifications, so a heartbeat it sends itself comes back; another
  // process's notification reaches that server connection while it is idle or lent to someone else,
  // and is lost. The proxy models that: it passes on only the notifications the session itself sent.
  it("is not taken for listening because its own notification came back", async () => {
    // A notification is passed on only when this session sent it.
    const proxy = await proxiedPostgres(
      (message, ownPid) => message[0] !== NOTIFICATION || message.readInt32BE(5) === ownPid,
    );
    const channel = "tw_pooler_self_echo_test";
    const listener = await ChangeListener.start({ connectionString: proxy.url }, channel, {
      heartbeatMs: 50,
      heartbeatTimeoutMs: 200,
    });
    const other = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await other.connect();
    try {
      const before = listener.stamp("bot:T1");
      // Another process rotates T1's bot token and notifies, as a commit does.
      await other.query(`NOTIFY "${channel}", 'bot:T1'`);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // Either the change was seen or the listener reads as deaf: never the stamp a cache filled under.
      expect(listener.stamp("bot:T1")).not.toBe(before);
    } finally {
      await other.end();
      await listener.close();
      proxy.close();
    }
  });
});

describe("postgres: change stamps", () => {
  it("remember a bounded number of keys, and a stamp never comes back to a value it had", async () => {
    const listener = await ChangeListener.start(
      { connectionString: TEST_POSTGRES_URL },
      "tw_stamp_bound_test",
      undefined,
      3,
    );
    try {
      const seen = new Map<string, Set<number>>();
      const read = (key: string) => {
        const s = listener.stamp(key);
        expect(listener.stamp(key)).toBe(s); // nothing changed between two reads
        if (!seen.has(key)) seen.set(key, new Set());
        return s;
      };
      const moved = (key: string) => {
        const s = read(key);
        // A cache entry filled under any earlier stamp of this key must miss now.
        expect(seen.get(key)?.has(s)).toBe(false);
        seen.get(key)?.add(s);
      };
      for (const key of ["a", "b", "z"]) moved(key);
      listener.bump("a");
      moved("a");
      expect(read("b")).toBe([...(seen.get("b") ?? [])][0]); // another key's change leaves b alone
      listener.bump("b");
      listener.bump("c");
      expect(listener.size).toBe(3);
      listener.bump("d"); // a fourth key: everything counts as changed, and the map starts over
      expect(listener.size).toBe(1);
      for (const key of ["a", "b", "z"]) moved(key);
      listener.bump("a");
      moved("a");
      listener.bump("e");
      listener.bump("f");
      listener.bump("g");
      for (const key of ["a", "b", "z"]) moved(key);
      expect(listener.size).toBeLessThanOrEqual(3);
    } finally {
      await listener.close();
    }
  });
});

describe("postgres: claim renewals asked for together", () => {
  const freshSchema = schemaPerTest();

  it("go out together and answer each claim for itself", async () => {
    const db = await freshSchema("postgres-store.test.ts#renewals");
    const store = await openMigrated(db);
    try {
      const ids = Array.from({ length: 300 }, (_, i) => `R${i}`);
      for (const id of ids) await store.putConnection(connection(id, [credential("bot", id)]), 1_000, []);
      const claims: RefreshClaim[] = [];
      for (const id of ids) {
        const r = await store.claimRefresh(
          { connectionId: id, kind: "bot" },
          { owner: "o", nowMs: 2_000, leaseMs: 30_000, freshUntilMs: Number.MAX_SAFE_INTEGER },
        );
        if (r.kind !== "claimed") throw new Error(`not claimed: ${r.kind}`);
        claims.push(r.claim);
      }
      await store.releaseClaim(claims[7] as RefreshClaim); // no longer held
      await store.deleteConnection("R8");
      const stale = { ...(claims[9] as RefreshClaim), claimId: "not-this-one" };
      const asked = claims.map((c, i) => (i === 9 ? stale : c));
      const answers = await Promise.all(asked.map((c) => store.renewClaim(c, 20_000, 30_000)));
      expect(answers.filter((a) => !a)).toHaveLength(3);
      expect([answers[7], answers[8], answers[9]]).toEqual([false, false, false]);
      expect(await store.getCredential({ connectionId: "R0", kind: "bot" })).toMatchObject({
        claimUntilMs: 50_000,
      });
      expect(await store.getCredential({ connectionId: "R9", kind: "bot" })).toMatchObject({
        claimUntilMs: 32_000, // the stale claim id renewed nothing
      });
    } finally {
      await store.close();
    }
  });
});

describe("postgres: claim renewals with a pool passed in", () => {
  const freshSchema = schemaPerTest();

  // Renewals queue for their one connection. A pool's connectionTimeoutMillis also times out a
  // request waiting its turn, so the renewal connection takes only a connect timeout of its own; a
  // pool passed in carried its connectionTimeoutMillis into it all the same, and a renewal behind a
  // slow one (a row lock, a busy database) failed after that long instead of waiting its turn.
  it("a renewal waiting behind a slow one is not timed out by the passed pool's connectionTimeoutMillis", async () => {
    const db = await freshSchema("postgres-store.test.ts#renewal-passed-pool");
    // A Client of the application's own (instrumented, or authenticating its own way) is used too.
    let ownClients = 0;
    class OwnClient extends pg.Client {
      constructor(config?: string | pg.ClientConfig) {
        super(config);
        ownClients++;
      }
    }
    const pool = new pg.Pool({
      connectionString: db.url,
      max: 3,
      connectionTimeoutMillis: 300,
      Client: OwnClient,
    });
    const store = await PostgresStore.open({ pool, schema: db.schema, sealer: testSealer() });
    const locker = await db.admin.connect();
    try {
      await store.migrate();
      const claim = await claimT1(store);
      // A transaction holding the row: the first renewal waits for it, on the renewal connection.
      await locker.query("BEGIN");
      await locker.query(`SELECT 1 FROM "${db.schema}".credentials FOR UPDATE`);
      const before = ownClients;
      const first = store.renewClaim(claim, 3_000, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      const second = store.renewClaim(claim, 3_100, 30_000); // the next turn: the next statement
      const both = Promise.allSettled([first, second]);
      await new Promise((resolve) => setTimeout(resolve, 700));
      await locker.query("COMMIT");
      expect(await both).toEqual([
        { status: "fulfilled", value: true },
        { status: "fulfilled", value: true },
      ]);
      expect(ownClients).toBe(before + 1); // the renewal connection
    } finally {
      await locker.query("ROLLBACK").catch(() => {});
      locker.release();
      await store.close().catch(() => {});
      await pool.end();
    }
  }, 10_000);
});

describe("postgres: a claim renewal when the database stops answering", () => {
  const freshSchema = schemaPerTest();

  // Renewals have a connection of their own. Were its reconnect left to the system's TCP timeout,
  // one renewal sent while the network dropped the database would hold every later one behind it
  // for minutes, past the leases of every claim this process holds, after the database came back.
  it("fails with store_unavailable at the connect timeout, not at the system's", async () => {
    const db = await freshSchema("postgres-store.test.ts#renewal-connect-timeout");
    const proxy = await proxiedPostgres(() => true, db.url);
    const store = await PostgresStore.open({
      connectionString: proxy.url,
      schema: db.schema,
      sealer: testSealer(),
      connectTimeoutMs: 300,
    });
    try {
      await store.migrate();
      const claim = await claimT1(store);
      expect(await store.renewClaim(claim, 3_000, 30_000)).toBe(true);
      proxy.cut();
      // The first renewal may still go out on the dropped connection, and fail on it; the next one
      // needs a new connection, to a database that never answers.
      for (const atMs of [4_000, 5_000]) {
        await expect(store.renewClaim(claim, atMs, 30_000)).rejects.toMatchObject({
          code: "store_unavailable",
        });
      }
    } finally {
      await store.close().catch(() => {});
      proxy.close();
    }
  }, 10_000);
});

describe("postgres: statements that lock the same rows in different orders", () => {
  const freshSchema = schemaPerTest();

  /**
   * A batch completion locks rows in whatever order its plan visits them (a hash join over a table of
   * some size: physical order), a key-rotation batch in key order: each can hold a row the other waits
   * for. PostgreSQL ends that by failing one, and the store runs it again. A trigger that sleeps while
   * the completion holds A1 only makes the interleaving certain; it changes no lock order.
   */
  it("a batch completion and a re-seal over the same rows both succeed", { timeout: 30_000 }, async () => {
    const schema = await freshSchema("postgres-store.test.ts#deadlock");
    const store = await openMigrated(schema);
    const rotator = await PostgresStore.open({
      connectionString: schema.url,
      schema: schema.schema,
      sealer: rotatedSealer(),
    });
    const s = `"${schema.schema}"`;
    try {
      await store.putConnection(connection("A1", [credential("bot", "a1")]), 1_000, []); // physically first
      // Enough rows that the completion's plan hashes its input and scans the table.
      await schema.admin.query(`INSERT INTO ${s}.connections
        SELECT 'F' || lpad(g::text, 5, '0'), provider, status, reason, metadata, created_at_ms, updated_at_ms
        FROM ${s}.connections, generate_series(1, 2000) g WHERE id = 'A1'`);
      await schema.admin.query(`INSERT INTO ${s}.credentials
        SELECT 'F' || lpad(g::text, 5, '0'), kind, provider, access_token_sealed, refresh_token_sealed,
               token_type, scopes, expires_at_ms, issued_at_ms, refreshed_at_ms, status, reason, last_error,
               version, failure_count, next_attempt_at_ms, refresh_in_doubt, provider_data, refresh_due_at_ms,
               NULL, NULL, NULL, NULL, NULL, next_run_at_ms
        FROM ${s}.credentials, generate_series(1, 2000) g WHERE connection_id = 'A1'`);
      // The filler rows are sealed for A1 and would not open under their own ids: out of the rotation.
      await schema.admin.query(`UPDATE ${s}.credentials SET access_token_sealed = 'v1.new.x', refresh_token_sealed = NULL
        WHERE connection_id LIKE 'F%'`);
      await store.putConnection(connection("A0", [credential("bot", "a0")]), 1_000, []); // physically last
      await schema.admin.query(`ANALYZE ${s}.credentials`);
      await schema.admin.query(`CREATE FUNCTION ${s}.slow_completion() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.claim_id IS NOT NULL AND NEW.claim_id IS NULL AND NEW.connection_id = 'A1' THEN
            PERFORM pg_sleep(1.5);
          END IF;
          RETURN NEW;
        END $$`);
      await schema.admin.query(`CREATE TRIGGER slow_completion BEFORE UPDATE ON ${s}.credentials
        FOR EACH ROW EXECUTE FUNCTION ${s}.slow_completion()`);
      const items = [];
      for (const id of ["A0", "A1"]) {
        const r = await store.claimRefresh(
          { connectionId: id, kind: "bot" },
          { owner: "o", nowMs: 2_000, leaseMs: 60_000, freshUntilMs: Number.MAX_SAFE_INTEGER },
        );
        if (r.kind !== "claimed") throw new Error(`not claimed: ${r.kind}`);
        items.push({
          claim: r.claim,
          result: { tokens: tokens(`n-${id}`), providerData: {}, refreshDueAtMs: 9_000 },
          nowMs: 3_000,
          event: event(id, "refreshed", 3_000),
        });
      }
      const completing = store.completeRefreshes(items);
      await new Promise((resolve) => setTimeout(resolve, 300)); // A1 locked, its trigger asleep
      const resealing = rotator.resealBatch(10);
      expect((await completing).map((o) => o.kind)).toEqual(["stored", "stored"]);
      expect((await resealing).resealed).toBe(2);
    } finally {
      await rotator.close();
      await store.close();
    }
  });
});

describe("postgres: what is run again after a deadlock abort", () => {
  const freshSchema = schemaPerTest();

  it("events appended together are recorded once each, after an abort part-way", async () => {
    const schema = await freshSchema("postgres-store.test.ts#abort-append");
    const store = await openMigrated(schema);
    const s = `"${schema.schema}"`;
    try {
      await store.putConnection(connection("C1", [credential("bot", "c1")]), 1_000, []);
      // PostgreSQL picks the second insert as a deadlock's victim, once (a trigger stands in for the cycle).
      await schema.admin.query(`CREATE SEQUENCE ${s}.victims`);
      await schema.admin.query(`CREATE FUNCTION ${s}.deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.type = 'refreshed' AND nextval('${s}.victims') = 1 THEN
            RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01';
          END IF;
          RETURN NEW;
        END $$`);
      await schema.admin.query(`CREATE TRIGGER deadlock_once BEFORE INSERT ON ${s}.events
        FOR EACH ROW EXECUTE FUNCTION ${s}.deadlock_once()`);
      await store.appendEvents([event("C1", "checked", 2_000), event("C1", "refreshed", 2_000)]);
      const events = await store.listEvents("C1", { limit: 10 });
      expect(events.map((e) => e.type).reverse()).toEqual(["checked", "refreshed"]);
    } finally {
      await store.close();
    }
  });
  it("a prune batch aborted to break a deadlock (a delete of the same connection's events) runs again", async () => {
    const schema = await freshSchema("postgres-store.test.ts#abort-prune");
    const store = await openMigrated(schema);
    const s = `"${schema.schema}"`;
    try {
      await store.putConnection(connection("C1", [credential("bot", "c1")]), 1_000, []);
      await store.appendEvents([event("C1", "checked", 2_000), event("C1", "refreshed", 3_000)]);
      await schema.admin.query(`CREATE SEQUENCE ${s}.victims`);
      await schema.admin.query(`CREATE FUNCTION ${s}.deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('${s}.victims') = 1 THEN
            RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01';
          END IF;
          RETURN OLD;
        END $$`);
      await schema.admin.query(`CREATE TRIGGER deadlock_once BEFORE DELETE ON ${s}.events
        FOR EACH ROW EXECUTE FUNCTION ${s}.deadlock_once()`);
      expect(await store.pruneEvents(10_000, 100)).toBe(2);
      expect(await store.listEvents("C1", { limit: 10 })).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it("a webhook prune batch aborted to break a deadlock (two instances pruning at once) runs again", async () => {
    const schema = await freshSchema("postgres-store.test.ts#abort-prune-outbox");
    const store = await openMigrated(schema);
    const s = `"${schema.schema}"`;
    try {
      await schema.admin.query(
        `INSERT INTO ${s}.outbox (id, type, payload, created_at_ms, next_attempt_at_ms, delivered_at_ms)
         VALUES ('w1', 'connection.recovered', '{}', 1000, NULL, 2000),
                ('w2', 'connection.recovered', '{}', 1000, NULL, 3000)`,
      );
      await schema.admin.query(`CREATE SEQUENCE ${s}.victims`);
      await schema.admin.query(`CREATE FUNCTION ${s}.deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('${s}.victims') = 1 THEN
            RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01';
          END IF;
          RETURN OLD;
        END $$`);
      await schema.admin.query(`CREATE TRIGGER deadlock_once BEFORE DELETE ON ${s}.outbox
        FOR EACH ROW EXECUTE FUNCTION ${s}.deadlock_once()`);
      expect(await store.pruneOutbox(10_000, 100)).toBe(2);
    } finally {
      await store.close();
    }
  });
});

describe("postgres: the database's clock", () => {
  it("is measured around the statement alone, not a wait for a pooled connection", async () => {
    const db = await createPgSchema("postgres-store.test.ts#clock-busy-pool");
    let slow = false;
    class BusyPool extends pg.Pool {
      override connect(...args: never[]): never {
        const connect = () => (super.connect as (...a: never[]) => never).apply(this, args);
        if (!slow) return connect();
        return new Promise((resolve) => setTimeout(resolve, 2_500)).then(connect) as never;
      }
    }
    const pool = new BusyPool({ connectionString: db.url, max: 2 });
    const store = await PostgresStore.open({ pool, schema: db.schema, sealer: testSealer() });
    try {
      await store.migrate();
      slow = true; // an app sharing the pool keeps it busy for 2.5 s
      expect(Math.abs((await store.clockOffsetMs()) ?? Number.NaN)).toBeLessThan(1_000);
    } finally {
      await store.close();
      await pool.end();
      await db.drop();
    }
  });

  it("is this host's clock on one machine: the offset measured is well under a second", async () => {
    const db = await createPgSchema("postgres-store.test.ts#clock");
    const store = await openMigrated(db);
    try {
      expect(Math.abs((await store.clockOffsetMs()) ?? Number.NaN)).toBeLessThan(1_000);
    } finally {
      await store.close();
      await db.drop();
    }
  });
});

describe("postgres: which key of a ring is newer, across hosts", () => {
  let db: PgSchema | undefined;
  const stores: PostgresStore[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const s of stores.splice(0)) await s.close().catch(() => {});
    await db?.drop();
    db = undefined;
  });

  // Instances compare instants on the database's clock, not their hosts'. Were a key's first-seen time
  // its host's, a host an hour ahead starting the old key would make it look newer than the key
  // generated after it; a `keys rotate` run by mistake with step 2's ring (old key first) would then
  // mark the NEW key rotated away, and every instance starting with it first (step 3) be refused.
  it("is judged on the database's clock, so the new key can still go first", async () => {
    db = await createPgSchema("postgres-store.test.ts#first-seen-clock");
    const oldKey = `old:${Buffer.alloc(32, 1).toString("base64")}`;
    const newKey = `new:${Buffer.alloc(32, 2).toString("base64")}`;
    const open = async (ring: string) => {
      const store = await PostgresStore.open({
        connectionString: db?.url ?? "",
        schema: db?.schema ?? "",
        sealer: createSealer(ring),
      });
      stores.push(store);
      await store.migrate();
      return store;
    };
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, "now").mockImplementation(() => realNow() + 3_600_000); // a host an hour ahead
    const first = await open(oldKey);
    await first.putConnection(connection("T1", [credential("bot", "x")]), 1_000, []);
    await first.checkKeyRing();
    vi.restoreAllMocks();

    const stepTwo = await open(`${oldKey},${newKey}`);
    await stepTwo.checkKeyRing();
    await stepTwo.resealBatch(100); // keys rotate, by mistake with step 2's ring

    const stepThree = await open(`${newKey},${oldKey}`);
    await expect(stepThree.checkKeyRing()).resolves.toBeUndefined();
  });
});
