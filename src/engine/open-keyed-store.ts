import { TokenwardenError } from "../core/errors.js";
import type { Store } from "../core/ports.js";
import { devKeyPathFor, resolveEncryptionKey } from "../crypto/dev-key-file.js";
import { ENCRYPTION_KEY_VARIABLE, type EncryptionKey, parseKeyRing } from "../crypto/key-ring.js";
import { AesGcmSealer } from "../crypto/seal.js";
import { checkDatabaseLocation, type OpenStoreOptions, openStore } from "../store/open-store.js";

/**
 * A store opened with a throwaway key, for work that reads and writes no sealed value (migrations,
 * listing connections). Never use it to write a token: nothing could open it again.
 */
export async function openKeylessStore(database: string): Promise<Store> {
  return openStore(database, new AesGcmSealer(parseKeyRing(Buffer.alloc(32, 7).toString("base64"))));
}

/**
 * A development key is generated for a database with nothing sealed in it yet, never for one that
 * holds connections: their tokens were sealed with a key this process lacks (forgotten, not
 * exported), and a new key would be refused by the key check, leaving behind a key file that opens
 * nothing and that every later start without the variable would pick up.
 */
async function refuseIfHoldingConnections(database: string): Promise<void> {
  const probe = await openKeylessStore(database);
  try {
    await probe.migrate();
    if ((await probe.listConnections({ limit: 1 })).items.length > 0) {
      throw new TokenwardenError(
        "config_invalid",
        `${ENCRYPTION_KEY_VARIABLE} is not set and this database already holds connections, sealed with the key they were written with: set that key (no development key was generated)`,
      );
    }
  } finally {
    await probe.close();
  }
}

export interface KeyedStoreOptions {
  database: string;
  /** The configured key ring; empty or undefined outside production means a development key file. */
  encryptionKey: string | undefined;
  nodeEnv: string | undefined;
  /** Where a development key is kept (default beside the database). */
  devKeyPath?: string;
  /** Told once when a development key file was generated, to warn in the caller's own voice. */
  onDevKeyCreated(path: string): void;
}

/**
 * Opens (without migrating) the store a database URL names, sealed with the configured key, or in
 * development with a key file beside it: what `createWarden`, `serve` and the CLI each do at start.
 * Returns the key ring too (the server derives its OAuth state key from it).
 */
export async function openKeyedStore(
  o: KeyedStoreOptions,
  storeOptions: OpenStoreOptions = {},
): Promise<{ store: Store; keys: EncryptionKey[] }> {
  checkDatabaseLocation(o.database);
  const key = await resolveEncryptionKey({
    envValue: o.encryptionKey,
    nodeEnv: o.nodeEnv,
    devKeyPath: o.devKeyPath || devKeyPathFor(o.database),
    beforeCreatingDevKey: () => refuseIfHoldingConnections(o.database),
  });
  if (key.devKeyCreated && key.devKeyPath !== null) o.onDevKeyCreated(key.devKeyPath);
  return { store: await openStore(o.database, new AesGcmSealer(key.keys), storeOptions), keys: key.keys };
}
