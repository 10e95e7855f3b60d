import { afterEach, describe, expect, it } from "vitest";
import type { Sealer } from "../../src/core/ports.js";
import { openStore } from "../../src/store/open-store.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { type StoreHarness, storeContract } from "../contract/store.contract.js";
import { eventually } from "../helpers/eventually.js";
import { createPgSchema, type PgSchema } from "../helpers/pg-schema.js";
import { connection, credential, event, testSealer, tokens } from "../helpers/store-fixtures.js";

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
    close: async () => {
      await store.close();
      await db.drop();
    },
  };
}

storeContract("postgres", openPostgresHarness);

describe("postgres: migrations and setup", () => {
  let db: PgSchema | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  it("lets 4 migrators race on one fresh schema; all succeed, each version applied once", async () => {
    db = await createPgSchema("postgres-store.test.ts#migrators");
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
      expect(rows.map((r: { version: number }) => r.version)).toEqual([1, 2, 3, 4, 5, 6]);
      await stores[0]?.putConnection(connection("T1", [credential("bot", "x")]), 1, []);
      expect((await stores[3]?.getConnection("T1"))?.status).toBe("active");
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("takes the schema from ?schema= in the database URL", async () => {
    db = await createPgSchema("postgres-store.test.ts#url-schema");
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

  it("counts everything as changed while its listener is down, and hears peers again after reconnecting", async () => {
    db = await createPgSchema("postgres-store.test.ts#listener");
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
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tokenwarden-listener' AND query = $1",
        [`LISTEN "${db.schema}.credentials"`],
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
    db = await createPgSchema("postgres-store.test.ts#batch-notify");
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
        expect(done.every(Boolean)).toBe(true);
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
    db = await createPgSchema("postgres-store.test.ts#unmigrated");
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
