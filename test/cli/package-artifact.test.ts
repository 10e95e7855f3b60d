// STYLE §6 "test the artifact": what `npm pack` ships is what users import and run. The packed
// package is unpacked beside this repo's node_modules (so no install from the registry is needed)
// and used the way an app uses it: `import "tokenwarden"`, its subpaths, the bin, a real warden.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../..");
let dir: string;
let pkg: string;
let files: string[];
let tarball: Buffer;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tokenwarden-pack-"));
  // --ignore-scripts: `npm test` has just built dist; packing must not rebuild under a running suite.
  const out = execFileSync("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], {
    cwd: ROOT,
    encoding: "utf8",
  });
  const [info] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
  if (!info) throw new Error("npm pack printed nothing");
  files = info.files.map((f) => f.path);
  tarball = readFileSync(join(dir, info.filename));
  const app = join(dir, "app");
  pkg = join(app, "node_modules", "tokenwarden");
  mkdirSync(pkg, { recursive: true });
  execFileSync("tar", ["-xzf", join(dir, info.filename), "-C", pkg, "--strip-components=1"]);
  // The package's own dependencies resolve from this repo's install.
  symlinkSync(join(ROOT, "node_modules"), join(pkg, "node_modules"));
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }));
}, 120_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function runInApp(code: string): string {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", code], {
    cwd: join(dir, "app"),
    encoding: "utf8",
    env: { PATH: process.env["PATH"] ?? "" },
  });
  if (r.status !== 0) throw new Error(`app failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

describe("the packed package", () => {
  it("ships compiled code and every migration, and no sources or tests", () => {
    expect(files).toContain("dist/index.js");
    expect(files).toContain("dist/index.d.ts");
    expect(files).toContain("dist/cli/main.js");
    for (const dialect of ["sqlite", "postgres"]) {
      for (const m of [
        "0001_init.sql",
        "0002_outbox.sql",
        "0003_outbox_pruning.sql",
        "0004_outbox_dead_letters.sql",
        "0005_forget_oauth_state_secret.sql",
      ]) {
        expect(files).toContain(`dist/store/migrations/${dialect}/${m}`);
      }
    }
    expect(files).toContain("dist/store/migrations/postgres/0006_credentials_fillfactor.sql");
    expect(files.filter((f) => f.startsWith("src/") || f.startsWith("test/"))).toEqual([]);
  });

  it("imports as an app would, and a warden works from it on a fresh SQLite file", () => {
    const out = runInApp(`
      import { randomBytes } from "node:crypto";
      import { createWarden, NeedsReauthError } from "tokenwarden";
      import { startSlackEmulator } from "tokenwarden/emulator";
      await import("tokenwarden/slack");
      const emu = await startSlackEmulator();
      const install = emu.control.install({ clientId: emu.demoApp.clientId });
      const warden = await createWarden({
        database: "sqlite:./app.db",
        encryptionKey: randomBytes(32).toString("base64"),
        providers: { slack: { clientId: emu.demoApp.clientId, clientSecret: emu.demoApp.clientSecret, baseUrl: emu.url } },
        env: {},
      });
      await warden.connections.import({ id: "T1", provider: "slack",
        credentials: { bot: { accessToken: install.access_token, refreshToken: install.refresh_token, expiresIn: 43200 } } });
      const t = await warden.getToken("T1");
      console.log(JSON.stringify({ same: t.accessToken === install.access_token, kind: t.kind, err: typeof NeedsReauthError }));
      await warden.close();
      await emu.close();
    `);
    expect(JSON.parse(out)).toEqual({ same: true, kind: "bot", err: "function" });
  });

  it("passes publint, and are-the-types-wrong for ESM importers (the package is ESM only)", async () => {
    const { publint } = await import("publint");
    const bytes = tarball.buffer.slice(tarball.byteOffset, tarball.byteOffset + tarball.byteLength);
    const linted = await publint({
      pack: { tarball: bytes as ArrayBuffer },
      level: "suggestion",
    });
    expect(linted.messages).toEqual([]);
    const { checkPackage, createPackageFromTarballData } = await import("@arethetypeswrong/core");
    const analysis = await checkPackage(createPackageFromTarballData(new Uint8Array(tarball)));
    if (analysis.types === false) throw new Error("are-the-types-wrong found no types");
    // CommonJS resolution (node10, require from node16) cannot load an ESM-only package by design.
    const esm = analysis.problems.filter(
      (p) => !("resolutionKind" in p) || (p.resolutionKind !== "node10" && p.resolutionKind !== "node16-cjs"),
    );
    expect(esm).toEqual([]);
    expect(Object.keys(analysis.entrypoints).sort()).toEqual([
      ".",
      "./emulator",
      "./package.json",
      "./slack",
    ]);
  }, 60_000);

  it("runs its bin", () => {
    const r = spawnSync(process.execPath, [join(pkg, "dist/cli/main.js"), "--help"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("diagnose");
  });
});
