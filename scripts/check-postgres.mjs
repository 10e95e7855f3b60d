// Fails loudly when the PostgreSQL the test suite needs is not there: CI must fail, not skip.
import pg from "pg";

const url = process.env.TOKENWARDEN_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
try {
  await client.connect();
  const { rows } = await client.query("select current_setting('server_version') as v");
  console.log(`PostgreSQL ${rows[0].v} reachable at ${url.replace(/\/\/[^@]*@/, "//…@")}`);
} catch (error) {
  console.error(`PostgreSQL is unreachable at ${url}: ${error.message}`);
  process.exit(1);
} finally {
  await client.end().catch(() => {});
}
