import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TmpSqlite {
  /** A real file in a fresh temporary directory: several processes can share it, unlike `:memory:`. */
  path: string;
  /** The bytes at rest: the database file and its WAL (and shared-memory index). */
  bytesAtRest(): Buffer;
  remove(): Promise<void>;
}

export async function createTmpSqlite(): Promise<TmpSqlite> {
  const dir = await mkdtemp(join(tmpdir(), "tokenwarden-sqlite-"));
  const path = join(dir, "tokenwarden.db");
  return {
    path,
    bytesAtRest: () =>
      Buffer.concat([path, `${path}-wal`, `${path}-shm`].filter(existsSync).map((f) => readFileSync(f))),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
