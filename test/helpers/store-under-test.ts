// Opens either store on a location a test (or a worker process) names, so one suite runs on both.
import type { Store } from "../../src/core/ports.js";
import { parseKeyRing } from "../../src/crypto/key-ring.js";
import { AesGcmSealer } from "../../src/crypto/seal.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { TEST_POSTGRES_URL } from "./pg-schema.js";

export type StoreKind = "sqlite" | "postgres";
export const STORE_KINDS: readonly StoreKind[] = ["sqlite", "postgres"];

/** `location` is the SQLite file path, or the PostgreSQL schema name. */
export async function openSealedStore(kind: StoreKind, location: string, key: string): Promise<Store> {
  const sealer = new AesGcmSealer(parseKeyRing(key));
  if (kind === "sqlite") return SqliteStore.open({ path: location, sealer });
  const { PostgresStore } = await import("../../src/store/postgres/postgres-store.js");
  return PostgresStore.open({ connectionString: TEST_POSTGRES_URL, schema: location, sealer, poolMax: 4 });
}
