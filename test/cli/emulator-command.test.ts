// `tokenwarden emulator slack` (the built binary) when whoever reads its stdout stops reading, as
// `tokenwarden emulator slack --port 0 | head -1` does once it has the URL line.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { beforeAll, describe, expect, it } from "vitest";
import { closedPort } from "../helpers/closed-port.js";
import { eventually } from "../helpers/eventually.js";
import { BIN, ensureBuilt } from "./built-cli.js";

beforeAll(() => {
  ensureBuilt();
}, 120_000);

describe("tokenwarden emulator slack", () => {
  it("keeps serving, without a stack trace, when its stdout is closed; SIGTERM still stops it", async () => {
    const port = await closedPort();
    const child = spawn(process.execPath, [BIN, "emulator", "slack", "--port", String(port)], {
      env: { PATH: process.env["PATH"] ?? "", NODE_ENV: "test" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    // Closed before the child has written anything (starting node takes far longer): every line it
    // writes meets a pipe with no reader (EPIPE).
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    try {
      const demo = await eventually(
        () =>
          fetch(`http://127.0.0.1:${port}/_emulator/demo`).then(
            (r) => r.status,
            () => null,
          ),
        (status) => status === 200 || child.exitCode !== null,
        { timeoutMs: 15_000, what: "the emulator to answer" },
      );
      expect(child.exitCode).toBeNull();
      expect(demo).toBe(200);
    } finally {
      child.kill("SIGTERM");
    }
    const [code] = await exited;
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });
});
