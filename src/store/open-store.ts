import { accessSync, constants, existsSync, lstatSync, readlinkSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { TokenwardenError } from "../core/errors.js";
import type { Sealer, Store } from "../core/ports.js";
import { PostgresStore } from "./postgres/postgres-store.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";

export interface OpenStoreOptions {
  /** PostgreSQL only: the schema holding the tables (default `tokenwarden`). */
  schema?: string;
  /** PostgreSQL only: pool size. */
  poolMax?: number;
  /** Write webhook rows to the outbox with the changes that cause them. */
  outbox?: boolean;
}

/**
 * Refuses a `sqlite:PATH` whose directory does not exist, before anything is created: a typo in the
 * path would otherwise surface as a raw ENOENT, or (where a development key is generated beside the
 * database first) as a new directory holding an empty database.
 *
 * @example
 * checkDatabaseLocation("sqlite:/no/such/dir/tw.db"); // throws config_invalid naming the directory
 */
export function checkDatabaseLocation(databaseUrl: string): void {
  if (!databaseUrl.startsWith("sqlite:")) return;
  const path = databaseUrl.slice("sqlite:".length);
  if (path === "" || path === ":memory:") return;
  // The path is handed to SQLite as a file name, never parsed as a URI: `file:` and a `?query`
  // (options as other tools' URLs take them) would silently become part of a new file's name.
  if (path.startsWith("file:") || path.includes("?"))
    throw new TokenwardenError(
      "config_invalid",
      "TOKENWARDEN_DATABASE_URL: sqlite: takes a plain file path (sqlite:./tokenwarden.db, sqlite:/var/lib/tokenwarden/tw.db), not a file: URI or a ?query",
    );
  const file = linkTarget(resolve(path));
  const dir = dirname(file);
  if (!existsSync(dir))
    throw new TokenwardenError(
      "config_invalid",
      `TOKENWARDEN_DATABASE_URL: the directory of the SQLite file, ${dir}, does not exist (create it first)`,
    );
  // A path SQLite could never open (a directory, a file's child, one this user may not write): said
  // here, as the configuration it is, rather than as a bare EISDIR or EACCES from the first open.
  const existing = existsSync(file);
  try {
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error(), { code: "ENOTDIR" });
    if (existing && statSync(file).isDirectory()) throw Object.assign(new Error(), { code: "EISDIR" });
    if (existing) accessSync(file, constants.R_OK | constants.W_OK);
    // The directory too: SQLite creates the -wal and -shm files beside the database.
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw new TokenwardenError(
      "config_invalid",
      `TOKENWARDEN_DATABASE_URL: the SQLite file ${resolve(path)}${file === resolve(path) ? "" : ` (a link to ${file})`} cannot be opened for reading and writing by this user (${code}: ${UNOPENABLE[code] ?? "check the path"})`,
    );
  }
}

/**
 * Where a path leads once its last element's symbolic links are followed, as SQLite does before it
 * names the -wal and -shm files: they live beside the target, so the link's own directory (a
 * read-only working directory whose ./tokenwarden.db links into a volume) needs no write access.
 * Followed even when the target does not exist yet: opening the link creates it.
 */
function linkTarget(path: string): string {
  let file = path;
  // The kernel's own limit on a chain of links; a loop is left for the open to report.
  for (let hops = 0; hops < 40; hops++) {
    try {
      if (!lstatSync(file).isSymbolicLink()) return file;
      file = resolve(dirname(file), readlinkSync(file));
    } catch {
      return file;
    }
  }
  return file;
}

const UNOPENABLE: Record<string, string> = {
  EISDIR: "that is a directory; name a file in it",
  ENOTDIR: "a part of the path is a file, not a directory",
  EACCES: "check the permissions of the file and its directory",
  EPERM: "check the permissions of the file and its directory",
  EROFS: "the file system is read-only",
};

/**
 * Opens the store `TOKENWARDEN_DATABASE_URL` names: `sqlite:PATH` or
 * `postgres://…` / `postgresql://…`. Does not migrate; call `store.migrate()`.
 *
 * @example
 * const store = await openStore(process.env.TOKENWARDEN_DATABASE_URL ?? "sqlite:./tokenwarden.db", sealer);
 * await store.migrate();
 */
export async function openStore(
  databaseUrl: string,
  sealer: Sealer,
  options: OpenStoreOptions = {},
): Promise<Store> {
  if (databaseUrl.startsWith("sqlite:")) {
    const path = databaseUrl.slice("sqlite:".length);
    if (path === "")
      throw new TokenwardenError(
        "config_invalid",
        "TOKENWARDEN_DATABASE_URL sqlite: needs a path, e.g. sqlite:./tokenwarden.db",
      );
    checkDatabaseLocation(databaseUrl);
    return SqliteStore.open({ path, sealer, outbox: options.outbox === true });
  }
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) {
    // `?schema=name` picks the schema in the URL itself (one variable configures everything);
    // it is ours, not libpq's, so it is taken off before pg sees the URL.
    const { connectionString, schema } = splitSchema(databaseUrl);
    const chosen = options.schema ?? schema;
    return PostgresStore.open({
      connectionString,
      sealer,
      outbox: options.outbox === true,
      ...(chosen === undefined ? {} : { schema: chosen }),
      ...(options.poolMax === undefined ? {} : { poolMax: options.poolMax }),
    }).catch((error: unknown) => {
      // A URL pg cannot parse (a port out of range, an unencoded `@` or `[` in the password) is
      // our configuration, not an unreachable store: exit 2, not 1, and say which variable. No
      // `cause`: Node's URL error carries the whole input, password and all, and a logger that
      // serialises causes would print it.
      if (invalidUrl(error))
        throw new TokenwardenError(
          "config_invalid",
          "TOKENWARDEN_DATABASE_URL is not a PostgreSQL URL the driver can read (check the port, and percent-encode special characters in the user and password)",
        );
      throw error;
    });
  }
  // The URL may hold a password: name the variable and the accepted forms, never the value.
  throw new TokenwardenError(
    "config_invalid",
    "TOKENWARDEN_DATABASE_URL must start with sqlite: (e.g. sqlite:./tokenwarden.db), postgres:// or postgresql://",
  );
}

function invalidUrl(error: unknown): boolean {
  const cause = error instanceof TokenwardenError ? error.cause : error;
  return (cause as NodeJS.ErrnoException | undefined)?.code === "ERR_INVALID_URL";
}

function splitSchema(databaseUrl: string): { connectionString: string; schema: string | undefined } {
  // The query string alone, not the whole URL: `postgres://user@/db?host=/socket` (a Unix socket, as
  // Cloud SQL's /cloudsql/… is given) is not a URL to `new URL`, but pg accepts it, and its schema
  // must not be passed over for the default one.
  const at = databaseUrl.indexOf("?");
  if (at === -1) return { connectionString: databaseUrl, schema: undefined };
  const query = new URLSearchParams(databaseUrl.slice(at + 1));
  const schema = query.get("schema") ?? undefined;
  if (schema === undefined) return { connectionString: databaseUrl, schema };
  query.delete("schema");
  const rest = query.toString();
  return { connectionString: databaseUrl.slice(0, at) + (rest === "" ? "" : `?${rest}`), schema };
}
