// One OS process of the claim race: opens the shared store (migrating it, racing the
// others), reports ready, then on "go" claims every credential at the same fake instant.
import type { ClaimResult, Store } from "../../src/core/ports.js";
import { createSealer } from "../../src/crypto/seal.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import { OLD_KEY } from "../helpers/store-fixtures.js";

const { TW_STORE, TW_LOCATION, TW_OWNER, TW_IDS, TW_NOW_MS } = process.env;

async function openStore(): Promise<Store> {
  const sealer = createSealer(OLD_KEY);
  if (TW_STORE === "sqlite") return SqliteStore.open({ path: TW_LOCATION ?? "", sealer });
  return PostgresStore.open({
    connectionString: TEST_POSTGRES_URL,
    schema: TW_LOCATION ?? "",
    sealer,
    poolMax: 4,
  });
}

try {
  const store = await openStore();
  await store.migrate();
  process.send?.({ type: "ready" });
  await new Promise<void>((resolve) => process.once("message", () => resolve()));
  const ids = (TW_IDS ?? "").split(",");
  const results = await Promise.all(
    ids.map(async (id): Promise<[string, ClaimResult["kind"]]> => {
      const result = await store.claimRefresh(
        { connectionId: id, kind: "bot" },
        {
          owner: TW_OWNER ?? "",
          nowMs: Number(TW_NOW_MS),
          leaseMs: 30_000,
          freshUntilMs: Number.MAX_SAFE_INTEGER,
        },
      );
      return [id, result.kind];
    }),
  );
  await store.close();
  process.send?.({ type: "result", value: results });
} catch (error) {
  process.send?.({
    type: "error",
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  process.exitCode = 1;
}
