// `tokenwarden demo` when the server cannot start: the emulator it started first is closed, so
// the process exits with the one-line error instead of hanging on a listening socket.

import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, ensureBuilt, runCli } from "./built-cli.js";

let dir: string;
let busy: Server;
let busyPort: number;

beforeAll(async () => {
  ensureBuilt();
  dir = await mkdtemp(join(tmpdir(), "tokenwarden-cli-demo-"));
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const address = busy.address();
  busyPort = typeof address === "object" && address !== null ? address.port : 0;
}, 120_000);
afterAll(async () => {
  await new Promise((resolve) => busy?.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const demo = (env: Record<string, string>, port: number) =>
  runCli(["demo", "--port", String(port), "--database", `sqlite:${join(dir, "demo.db")}`], {
    cwd: dir,
    env,
    // Only a hang reaches this; a demo that fails to start exits within a second.
    timeoutMs: 30_000,
  });

describe("tokenwarden demo after a startup failure", () => {
  it("port in use: exits 1 with one line, nothing left running", async () => {
    const r = await demo({ TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64") }, busyPort);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tokenwarden: .*EADDRINUSE.*\n$/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).toBe("");
  }, 40_000);

  it("a bad encryption key: exits 2 with one line naming the variable, not its value", async () => {
    const r = await demo({ TOKENWARDEN_ENCRYPTION_KEY: "not-a-key-SECRETISH" }, 0);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tokenwarden: .*TOKENWARDEN_ENCRYPTION_KEY.*\n$/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain("SECRETISH");
  }, 40_000);

  it("a bad --token-ttl: exits 2 naming that option (not --port), before starting anything", async () => {
    for (const ttl of ["abc", "0", "-5", "1.5"]) {
      const r = await runCli(["demo", "--token-ttl", ttl], { cwd: dir, env: {}, timeoutMs: 30_000 });
      expect(r.timedOut).toBe(false);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("--token-ttl must be an integer ≥ 1");
      expect(r.stderr).not.toContain("--port");
    }
  }, 60_000);
});

describe("tokenwarden demo, running", () => {
  it("prints the episode as it happens: an uninstall turns into a needs_reauth line with its reconnect link", async () => {
    const child = spawn(
      process.execPath,
      [BIN, "demo", "--port", "0", "--database", `sqlite:${join(dir, "running.db")}`],
      {
        cwd: dir,
        env: {
          PATH: process.env["PATH"] ?? "",
          TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    const seen = (pattern: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const look = () => {
          const m = pattern.exec(stdout);
          if (m !== null) resolve(m);
        };
        child.stdout.on("data", (c: Buffer) => {
          stdout += c.toString();
          look();
        });
        child.on("exit", () => reject(new Error(`demo exited; it printed:\n${stdout}`)));
        look();
      });
    try {
      const [, uninstall] = await seen(/uninstall: {2}(curl .*)\n/);
      expect(stdout).not.toContain("dashboard");
      const [, url, body] = /-X POST (\S+) -d '([^']+)'/.exec(uninstall ?? "") ?? [];
      const res = await fetch(url ?? "", {
        method: "POST",
        body: body ?? "",
        headers: { "content-type": "application/json" },
      });
      expect(res.status).toBe(200);
      const [line] = await seen(
        /needs_reauth \S+ \((app_uninstalled|token_revoked)\): reconnect at http:\/\/\S+\n/,
      );
      expect(line).toContain("/oauth/slack/install?connection_id=");
    } finally {
      child.kill("SIGTERM");
    }
  }, 60_000);

  it("its reconnect line, pasted into a shell, opens the signed link whole", async () => {
    const child = spawn(
      process.execPath,
      [BIN, "demo", "--port", "0", "--database", `sqlite:${join(dir, "paste.db")}`],
      {
        cwd: dir,
        env: {
          PATH: process.env["PATH"] ?? "",
          TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      const command = await new Promise<string>((resolve, reject) => {
        let stdout = "";
        child.stdout.on("data", (c: Buffer) => {
          stdout += c.toString();
          const m = /reconnect: {2}(.*)\n/.exec(stdout);
          if (m !== null) resolve(m[1] ?? "");
        });
        child.on("exit", () => reject(new Error(`demo exited; it printed:\n${stdout}`)));
      });
      // The link is signed (`…&sig=…`): an unquoted `&` would run `open` on the bare link in the
      // background and drop the signature.
      expect(command).toMatch(/^open /);
      const pasted = spawnSync("sh", ["-c", `open() { printf '%s\\n' "$@"; }; ${command}; wait`], {
        encoding: "utf8",
      });
      expect(pasted.status).toBe(0);
      expect(pasted.stdout).toMatch(
        /^http:\/\/\S+\/oauth\/slack\/install\?connection_id=\S+&sig=[\w-]{43}\n$/,
      );
    } finally {
      child.kill("SIGTERM");
    }
  }, 60_000);
});

describe("tokenwarden demo, run again on the same file", () => {
  // Each run starts a new emulator, so the workspace an earlier run left in the demo database belongs
  // to an app that is gone: its refreshes were refused (client_id_mismatch) and logged every few
  // seconds beside the new run's output, and the list showed both workspaces.
  it("forgets the workspace an earlier run left, and keeps what it did not import", async () => {
    const database = `sqlite:${join(dir, "again.db")}`;
    const key = randomBytes(32).toString("base64");
    const run = async (before?: (api: string, apiKey: string) => Promise<void>) => {
      const child = spawn(process.execPath, [BIN, "demo", "--port", "0", "--database", database], {
        cwd: dir,
        env: { PATH: process.env["PATH"] ?? "", TOKENWARDEN_ENCRYPTION_KEY: key },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      try {
        const banner = await new Promise<RegExpExecArray>((resolve, reject) => {
          const pattern = /API: +(\S+)\/v1\/connections[\s\S]*API key: +(\S+)[\s\S]*workspace (\S+) with/;
          child.stdout.on("data", (c: Buffer) => {
            stdout += c.toString();
            const m = pattern.exec(stdout);
            if (m !== null) resolve(m);
          });
          child.on("exit", () => reject(new Error(`demo exited; it printed:\n${stdout}`)));
        });
        const [, api = "", apiKey = "", team = ""] = banner;
        const list = async () => {
          const res = await fetch(`${api}/v1/connections`, {
            headers: { authorization: `Bearer ${apiKey}` },
          });
          return ((await res.json()) as { items: Array<{ id: string }> }).items.map((c) => c.id).sort();
        };
        await before?.(api, apiKey);
        return { team, ids: await list() };
      } finally {
        child.kill("SIGTERM");
        await new Promise((resolve) => child.on("exit", resolve));
      }
    };
    const first = await run(async (api, apiKey) => {
      // A connection of the user's own in the same database is not the demo's to delete.
      const res = await fetch(`${api}/v1/connections`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({
          id: "mine",
          provider: "slack",
          credentials: { bot: { access_token: "xoxb-1" } },
        }),
      });
      expect(res.status).toBe(201);
    });
    const second = await run();
    expect(second.team).not.toBe(first.team);
    expect(second.ids).toEqual([second.team, "mine"].sort());
  }, 60_000);
});
