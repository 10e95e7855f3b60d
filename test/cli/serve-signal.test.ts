// `tokenwarden serve` as an operator runs it: the built binary, stopped with SIGTERM.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ensureBuilt } from "./built-cli.js";

let dir: string;
beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-serve-"));
}, 120_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("tokenwarden serve", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`serves, then shuts down cleanly on ${signal} with exit code 0`, async () => {
      const child = spawn(process.execPath, [BIN, "serve", "--port", "0"], {
        cwd: dir,
        env: {
          PATH: process.env["PATH"] ?? "",
          TOKENWARDEN_DATABASE_URL: `sqlite:${join(dir, `${signal}.db`)}`,
          TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
          TOKENWARDEN_API_KEY: "test-api-key-0123456789",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => {
        stderr += c.toString();
      });
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (c: Buffer) => {
          stdout += c.toString();
          const m = /listening on (http:\/\/\S+)/.exec(stdout);
          if (m?.[1]) resolve(m[1]);
        });
        void exited.then((code) => reject(new Error(`serve exited early (${code}): ${stderr}`)));
      });
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      const listed = await fetch(`${url}/v1/connections`, {
        headers: { authorization: "Bearer test-api-key-0123456789" },
      });
      expect(listed.status).toBe(200);
      child.kill(signal);
      expect(await exited).toBe(0);
      expect(stderr).toContain(`${signal}: shutting down`);
      // Stopped accepting: nothing answers any more.
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    }, 60_000);
  }
});
