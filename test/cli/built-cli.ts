// Runs the BUILT binary as a user would: `node dist/cli/main.js …` in a child process.
// Builds first when dist is missing or older than src (under a lock: two test files may ask at once).
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "../..");
export const BIN = join(ROOT, "dist/cli/main.js");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const s = statSync(path);
    newest = Math.max(newest, s.isDirectory() ? newestMtime(path) : s.mtimeMs);
  }
  return newest;
}

function isStale(): boolean {
  try {
    return statSync(BIN).mtimeMs < newestMtime(join(ROOT, "src"));
  } catch {
    return true;
  }
}

/** `npm test` builds first, so this is usually a no-op; `npx vitest run test/cli` builds here. */
export function ensureBuilt(): void {
  if (!isStale()) return;
  const lock = join(tmpdir(), `tokenwarden-cli-build-${Buffer.from(ROOT).toString("hex").slice(-24)}.lock`);
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (i > 600) throw new Error("timed out waiting for another test file's build");
      spawnSync("sleep", ["0.1"]);
    }
  }
  try {
    if (!isStale()) return;
    const r = spawnSync("npm", ["run", "build"], { cwd: ROOT, encoding: "utf8" });
    // tsc emits even when another work-in-progress file has a type error; the binary is what we test.
    if (isStale()) throw new Error(`npm run build failed:\n${r.stdout}\n${r.stderr}`);
  } finally {
    rmdirSync(lock);
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** True when `timeoutMs` ran out and the process was killed: it did not exit on its own. */
  timedOut: boolean;
}

/**
 * Runs the CLI without blocking this process (the emulator it talks to may live here).
 * `timeoutMs` kills a process that should have exited and did not (a hang is then a failed
 * assertion, not a stuck test run); it never decides an outcome by waiting.
 */
export function runCli(
  args: string[],
  options: {
    env?: Record<string, string>;
    input?: string;
    cwd?: string;
    timeoutMs?: number;
    /** Close the read end of stdout after its first chunk, as `| head -1` does. */
    stopReadingEarly?: boolean;
  } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      // A clean environment: only what the test passes, so a developer's SLACK_* never leaks in.
      env: { PATH: process.env["PATH"] ?? "", NODE_ENV: "test", ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const guard =
      options.timeoutMs === undefined
        ? null
        : setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
          }, options.timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (options.stopReadingEarly === true) child.stdout.destroy();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (guard !== null) clearTimeout(guard);
      resolve({ code: code ?? -1, stdout, stderr, timedOut });
    });
    child.stdin.end(options.input ?? "");
  });
}
