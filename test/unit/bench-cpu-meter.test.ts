// The storm report's CPU comparison counts the processes each run involves: the raw run (client,
// emulator) and a SQLite storm never count the host's PostgreSQL, whose own work meanwhile (the
// autovacuum after a storm's deletes) would otherwise be charged to them.
import pg from "pg";
import { describe, expect, it } from "vitest";
import { cpuMeter } from "../../bench/processes.js";
import { TEST_POSTGRES_URL } from "../helpers/pg-schema.js";

describe.runIf(process.platform === "linux")("cpuMeter", () => {
  it("leaves PostgreSQL's CPU out of a run that does not involve it, and counts it in one that does", async () => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await client.connect();
    try {
      const without = cpuMeter(-1, 1, "client", { postgres: false });
      const withPg = cpuMeter(-1, 1, "tokenwarden", { postgres: true });
      // A backend busy on a core for a few hundred milliseconds while this process waits.
      await client.query("SELECT sum(i) FROM generate_series(1, 8000000) AS i");
      const a = without();
      const b = withPg();
      expect(b.totalUs).toBeGreaterThan(150_000);
      expect(a.totalUs).toBeLessThan(((b.totalUs ?? 0) * 1) / 3);
    } finally {
      await client.end();
    }
  });
});
