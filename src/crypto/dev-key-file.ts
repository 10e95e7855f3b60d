import { randomBytes } from "node:crypto";
import { link, mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { TokenwardenError } from "../core/errors.js";
import { ENCRYPTION_KEY_VARIABLE, type EncryptionKey, generateKey, parseKeyRing } from "./key-ring.js";

export interface DevKey {
  /** The key ring text, as `TOKENWARDEN_ENCRYPTION_KEY` would hold it. */
  value: string;
  /** True when this call generated the file: the caller should warn that it is for development only. */
  created: boolean;
}

/**
 * Where the development key lives when none is configured: beside a SQLite database (so each
 * database keeps its own key), else in the working directory.
 *
 * @example
 * devKeyPathFor("sqlite:./data/tw.db"); // "/abs/path/data/.tokenwarden-dev-key"
 */
export function devKeyPathFor(database: string): string {
  if (database.startsWith("sqlite:")) {
    const file = database.slice("sqlite:".length);
    if (file !== ":memory:" && file !== "") return join(dirname(resolve(file)), ".tokenwarden-dev-key");
  }
  return resolve(".tokenwarden-dev-key");
}

/**
 * Development only: reads the key file at `path`, or creates it (mode 0600)
 * with a fresh key. Safe when several processes start at once: the file
 * appears whole, via `link`, or not at all. Refuses a file others can read.
 * `beforeCreating` runs only when the file would be created; if it throws, nothing is written.
 *
 * @example
 * const { value, created } = await loadOrCreateDevKey(".tokenwarden/dev-encryption-key");
 * if (created) log.warn({}, "generated a development encryption key");
 */
export async function loadOrCreateDevKey(
  path: string,
  beforeCreating: () => Promise<void> = async () => {},
): Promise<DevKey> {
  const existing = await readKeyFile(path);
  if (existing !== null) return { value: existing, created: false };
  await beforeCreating();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Write a private temp file, then link it into place: link fails with EEXIST
  // if another process won, and a reader never sees a half-written key.
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  await writeDurably(tmp, `${generateKey()}\n`);
  try {
    await link(tmp, path);
    // Tokens sealed under this key are about to be committed durably: a power cut must not leave
    // them behind a key file that was never written to disk, or a name that was never recorded.
    await syncDirectory(dirname(path));
    return { value: (await readKeyFile(path)) ?? "", created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST")
      throw keyFileError(path, "cannot be created", error);
    const winner = await readKeyFile(path);
    if (winner === null) throw keyFileError(path, "vanished while being created", error);
    return { value: winner, created: false };
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

export interface ResolvedKey {
  keys: EncryptionKey[];
  source: "environment" | "dev_key_file";
  /** True when a development key file was generated just now: warn loudly. */
  devKeyCreated: boolean;
  devKeyPath: string | null;
}

/**
 * Where the encryption key comes from: the environment if set; in production
 * nowhere else (encryption is never optional, and a generated key on one
 * server's disk would strand every other server); otherwise a development key file.
 *
 * @example
 * const key = await resolveEncryptionKey({ envValue: env.TOKENWARDEN_ENCRYPTION_KEY, nodeEnv: env.NODE_ENV, devKeyPath });
 * const sealer = new AesGcmSealer(key.keys);
 */
export async function resolveEncryptionKey(options: {
  envValue: string | undefined;
  nodeEnv: string | undefined;
  devKeyPath: string;
  /** Runs before a development key file is generated (not when one is read); throw to refuse. */
  beforeCreatingDevKey?: () => Promise<void>;
}): Promise<ResolvedKey> {
  const { envValue, nodeEnv, devKeyPath } = options;
  if (envValue !== undefined && envValue.trim() !== "") {
    return { keys: parseKeyRing(envValue), source: "environment", devKeyCreated: false, devKeyPath: null };
  }
  if (nodeEnv === "production") {
    throw new TokenwardenError(
      "config_invalid",
      `${ENCRYPTION_KEY_VARIABLE} is required when NODE_ENV=production (generate one with \`tokenwarden keys generate\`)`,
    );
  }
  const dev = await loadOrCreateDevKey(devKeyPath, options.beforeCreatingDevKey);
  return {
    keys: parseKeyRing(dev.value, `the development key file ${devKeyPath}`),
    source: "dev_key_file",
    devKeyCreated: dev.created,
    devKeyPath,
  };
}

async function writeDurably(path: string, text: string): Promise<void> {
  const file = await open(path, "wx", 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
}

async function syncDirectory(path: string): Promise<void> {
  // Windows cannot open a directory to sync it; NTFS journals the name itself.
  if (process.platform === "win32") return;
  const dir = await open(path, "r");
  try {
    await dir.sync();
  } catch (error) {
    // Some file systems cannot sync a directory (CIFS shares, some FUSE and network volumes): the
    // name is then as durable as they make it, and the key file is in place, so that is no failure.
    if (!DIRECTORY_SYNC_UNSUPPORTED.has((error as NodeJS.ErrnoException).code ?? "")) throw error;
  } finally {
    await dir.close();
  }
}

const DIRECTORY_SYNC_UNSUPPORTED = new Set(["EINVAL", "ENOTSUP", "EOPNOTSUPP"]);

async function readKeyFile(path: string): Promise<string | null> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw keyFileError(path, "cannot be read", error);
  }
  // POSIX modes mean nothing on Windows; there the file inherits the directory's ACL.
  if (process.platform !== "win32" && (mode & 0o077) !== 0) {
    throw keyFileError(
      path,
      `is readable by others (mode ${(mode & 0o777).toString(8)}); run chmod 600 on it`,
    );
  }
  return (await readFile(path, "utf8")).trim();
}

function keyFileError(path: string, problem: string, cause?: unknown): TokenwardenError {
  return new TokenwardenError("config_invalid", `encryption key file ${path} ${problem}`, { cause });
}
