import { createHash } from "node:crypto";
import pg from "pg";

export const TEST_POSTGRES_URL =
  process.env["TOKENWARDEN_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

export interface PgSchema {
  url: string;
  /** Fresh and unique to this test; dropped by `drop()`. Not created: the store's migrate() does that. */
  schema: string;
  /** An admin pool on the test database, for assertions that read raw rows. */
  admin: pg.Pool;
  drop(): Promise<void>;
}

let counter = 0;

/**
 * A schema per test (pg-boss's way): tests in parallel never see each other's
 * rows or notifications. Throws, never skips, when PostgreSQL is unreachable.
 */
export async function createPgSchema(label: string): Promise<PgSchema> {
  counter += 1;
  const hash = createHash("sha256").update(`${label}\u0000${process.pid}\u0000${counter}`).digest("hex");
  const schema = `tw_test_${hash.slice(0, 16)}`;
  const admin = new pg.Pool({ connectionString: TEST_POSTGRES_URL, max: 2, connectionTimeoutMillis: 5_000 });
  try {
    await admin.query("SELECT 1");
  } catch (error) {
    await admin.end().catch(() => {});
    throw new Error(
      `PostgreSQL is unreachable at ${TEST_POSTGRES_URL} (set TOKENWARDEN_TEST_POSTGRES_URL): ${String(error)}`,
      { cause: error },
    );
  }
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  return {
    url: TEST_POSTGRES_URL,
    schema,
    admin,
    drop: async () => {
      try {
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await admin.end();
      }
    },
  };
}

/**
 * Makes PostgreSQL refuse the writes that hand back a claim on `connectionId` (clear its claim id):
 * the write that parks an unreadable credential, and a release. `times` of them, or every one; the
 * returned function says how many were attempted.
 */
export async function refuseHandBacks(
  db: PgSchema,
  connectionId: string,
  times: number = Number.POSITIVE_INFINITY,
): Promise<() => Promise<number>> {
  const q = `"${db.schema}"`;
  const limit = Number.isFinite(times) ? String(times) : "NULL";
  await db.admin.query(`CREATE SEQUENCE ${q}.hand_back_tries`);
  await db.admin.query(`CREATE FUNCTION ${q}.refuse_hand_back() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE try bigint;
    BEGIN
      IF OLD.claim_id IS NOT NULL AND NEW.claim_id IS NULL AND NEW.connection_id = '${connectionId}' THEN
        try := nextval('${q}.hand_back_tries');
        IF ${limit}::bigint IS NULL OR try <= ${limit} THEN
          RAISE EXCEPTION 'hand-back refused';
        END IF;
      END IF;
      RETURN NEW;
    END $$`);
  await db.admin.query(
    `CREATE TRIGGER refuse_hand_back BEFORE UPDATE ON ${q}.credentials FOR EACH ROW EXECUTE FUNCTION ${q}.refuse_hand_back()`,
  );
  return async () => {
    const { rows } = await db.admin.query(
      `SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM ${q}.hand_back_tries`,
    );
    return Number(rows[0]?.n);
  };
}
