// The logger `serve` and createWarden use when given none: an error's message and stack reach the
// log (a JSON.stringify logger once wrote `{"err":{"code":…}}` and lost both), and tokens do not.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const MODULE = fileURLToPath(new URL("../../src/engine/default-logger.ts", import.meta.url));

function stderrOf(script: string, env: NodeJS.ProcessEnv = {}): string {
  const run = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "--input-type=module",
      "-e",
      `import { defaultLogger } from ${JSON.stringify(MODULE)};\n${script}`,
    ],
    { encoding: "utf8", env: { ...process.env, ...env } },
  );
  expect(run.status, run.stderr).toBe(0);
  return run.stderr;
}

describe("the default logger", () => {
  it("keeps an error's message and stack, and redacts token fields", () => {
    const err = stderrOf(`
      const log = defaultLogger({});
      const cause = Object.assign(new Error("the store refused the write"), { code: "store_unavailable" });
      log.error({ err: cause, access_token: "xoxb-SECRET" }, "webhook pass failed");
      log.info({}, "not at the default level");
    `);
    const line = JSON.parse(err.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
    expect(line["msg"]).toBe("webhook pass failed");
    expect(line["err"]).toMatchObject({ message: "the store refused the write", code: "store_unavailable" });
    expect(String((line["err"] as { stack?: unknown }).stack)).toContain(
      "Error: the store refused the write",
    );
    expect(err).not.toContain("xoxb-SECRET");
    expect(err).not.toContain("not at the default level");
  });

  it("logs at TOKENWARDEN_LOG_LEVEL", () => {
    const err = stderrOf(`defaultLogger({ TOKENWARDEN_LOG_LEVEL: "info" }).info({ n: 1 }, "now at info");`);
    expect(err).toContain("now at info");
  });
});

describe("the default logger's redaction", () => {
  it("covers every token field, at the top of a log object and one level down", () => {
    const fields = ["accessToken", "refreshToken", "access_token", "refresh_token", "client_secret"];
    const top = Object.fromEntries(fields.map((f, i) => [f, `TOP${i}-SECRET`]));
    const nested = { body: Object.fromEntries(fields.map((f, i) => [f, `NESTED${i}-SECRET`])) };
    const err = stderrOf(`defaultLogger({}).error(${JSON.stringify({ ...top, ...nested })}, "logged");`);
    expect(err).toContain('"msg":"logged"');
    expect(err).not.toMatch(/(TOP|NESTED)\d-SECRET/);
  });
});
