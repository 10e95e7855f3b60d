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

/** `tokenwarden serve` on a database of its own in `dir`, once it says where it listens. */
async function startServe(name: string, env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, "serve", "--port", "0"], {
    cwd: dir,
    env: {
      PATH: process.env["PATH"] ?? "",
      TOKENWARDEN_DATABASE_URL: `sqlite:${join(dir, `${name}.db`)}`,
      TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      TOKENWARDEN_API_KEY: "test-api-key-0123456789",
      ...env,
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
  return { child, url, exited, stdout: () => stdout, stderr: () => stderr };
}

describe("tokenwarden serve", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`serves, then shuts down cleanly on ${signal} with exit code 0`, async () => {
      const { child, url, exited, stderr } = await startServe(signal);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      const listed = await fetch(`${url}/v1/connections`, {
        headers: { authorization: "Bearer test-api-key-0123456789" },
      });
      expect(listed.status).toBe(200);
      child.kill(signal);
      expect(await exited).toBe(0);
      expect(stderr()).toContain(`${signal}: shutting down`);
      expect(stderr()).toContain(
        "note: Slack is not configured (set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET)",
      );
      expect(stderr()).not.toContain("SLACK_SIGNING_SECRET"); // no Slack at all: one note is enough
      // Stopped accepting: nothing answers any more.
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    }, 60_000);
  }

  it("logs HTTP requests to stderr as JSON lines, with the query's values left out", async () => {
    const {
      child,
      url,
      exited,
      stdout: out,
      stderr: err,
    } = await startServe("log", {
      TOKENWARDEN_LOG_LEVEL: "info",
      SLACK_CLIENT_ID: "1.2",
      SLACK_CLIENT_SECRET: "client-secret-value",
      SLACK_BASE_URL: "http://127.0.0.1:9",
    });
    // A token in a query string (as a proxied Web API call may carry one) and an OAuth callback's code.
    await fetch(`${url}/v1/proxy/T1/auth.test?token=xoxb-secret-in-query&channel=C1`, {
      headers: { authorization: "Bearer test-api-key-0123456789" },
    });
    await fetch(`${url}/oauth/slack/callback?code=secret-oauth-code&state=secret-state`);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const stderr = err();
    const stdout = out();
    const lines = stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { req?: { url?: string } });
    const urls = lines.flatMap((l) => (l.req?.url === undefined ? [] : [l.req.url]));
    expect(urls).toContain("/v1/proxy/T1/auth.test?token=…&channel=…");
    expect(urls).toContain("/oauth/slack/callback?code=…&state=…");
    for (const secret of ["xoxb-secret-in-query", "secret-oauth-code", "secret-state"]) {
      expect(stderr).not.toContain(secret);
      expect(stdout).not.toContain(secret);
    }
    expect(stdout).not.toMatch(/"req":/); // the request log is not on stdout
    expect(stderr).not.toContain("Slack is not configured");
    // Slack without its signing secret: events are refused, and serve says so once at start.
    expect(stderr).toContain("note: SLACK_SIGNING_SECRET is not set");
  }, 60_000);
});
