// A SQLite file reached through a symbolic link: SQLite follows the link and keeps its -wal and -shm
// files beside the target, so the link's own directory need not be writable (a read-only working
// directory in a container, its ./tokenwarden.db a link into a volume). The start must not refuse it.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ensureBuilt } from "./built-cli.js";

let dir: string;
const asRoot = process.getuid?.() === 0;
// As root every directory is writable: run the CLI as `nobody` instead (setpriv, util-linux).
const canDropPrivileges = asRoot && spawnSync("setpriv", ["--version"]).status === 0;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-sqlite-link-"));
  await chmod(dir, 0o755);
}, 120_000);
afterAll(async () => {
  if (dir) {
    await chmod(join(dir, "app"), 0o755).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});

function runCliAsUnprivileged(args: string[], env: Record<string, string>) {
  const base = { PATH: process.env["PATH"] ?? "", NODE_ENV: "test", ...env };
  const command = canDropPrivileges
    ? ["setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, BIN, ...args]]
    : [process.execPath, [BIN, ...args]];
  return spawnSync(command[0] as string, command[1] as string[], { env: base, encoding: "utf8", cwd: dir });
}

describe.skipIf(asRoot && !canDropPrivileges)(
  "a sqlite: path that is a link into a writable directory",
  () => {
    it("opens, with the link's own directory read-only: -wal and -shm go beside the target", async () => {
      const app = join(dir, "app");
      const data = join(dir, "data");
      await mkdir(app);
      await mkdir(data);
      await chmod(data, 0o777); // writable by whoever runs the CLI (nobody, as root)
      await symlink(join(data, "tw.db"), join(app, "tw.db"));
      await chmod(app, 0o555); // not writable by that user
      const key = randomBytes(32).toString("base64");
      const r = runCliAsUnprivileged(["migrate", "--database", `sqlite:${join(app, "tw.db")}`], {
        TOKENWARDEN_ENCRYPTION_KEY: key,
      });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(existsSync(join(data, "tw.db"))).toBe(true);
      expect(await readdir(app)).toEqual(["tw.db"]);
    });
  },
);
