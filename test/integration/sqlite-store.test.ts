import type { Sealer } from "../../src/core/ports.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { type StoreHarness, storeContract } from "../contract/store.contract.js";
import { createTmpSqlite } from "../helpers/tmp-sqlite.js";

async function openSqliteHarness(sealer: Sealer): Promise<StoreHarness> {
  const file = await createTmpSqlite();
  const store = await SqliteStore.open({ path: file.path, sealer });
  await store.migrate();
  return {
    store,
    openPeer: (peerSealer) => SqliteStore.open({ path: file.path, sealer: peerSealer }),
    textAtRest: async () => file.bytesAtRest().toString("latin1"),
    close: async () => {
      await store.close();
      await file.remove();
    },
  };
}

storeContract("sqlite", openSqliteHarness);
