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
