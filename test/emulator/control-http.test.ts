// The control API over HTTP (`/_emulator/*`) and the CLI, as another OS process would use them.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { api, emulator, refresh, str } from "./emulator-harness.js";

async function control(url: string, name: string, body?: unknown, method = "POST") {
  const res = await fetch(`${url}/_emulator/${name}`, {
    method,
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe("control API over HTTP", () => {
  it("mirrors the in-process calls", async () => {
    const emu = await emulator();
    const demo = await control(emu.url, "demo", undefined, "GET");
    expect(demo.body).toEqual({ demoApp: emu.demoApp, demoTeam: emu.demoTeam });
    const app = (await control(emu.url, "createApp", { name: "Remote", tokenRotation: true })).body;
    const team = (await control(emu.url, "createTeam", { name: "Remote WS" })).body;
    const user = (await control(emu.url, "createUser", { teamId: team["teamId"] })).body;
    const install = (
      await control(emu.url, "install", {
        clientId: app["clientId"],
        teamId: team["teamId"],
        userId: user["userId"],
        botScopes: ["chat:write"],
      })
    ).body;
    expect(install).toMatchObject({
      ok: true,
      team: { id: team["teamId"], name: "Remote WS" },
      authed_user: { id: user["userId"] },
    });
    const bot = str(install, "access_token");
    expect((await control(emu.url, "tokenInfo", { token: bot })).body).toMatchObject({
      kind: "bot",
      state: "active",
    });
    const before = (await control(emu.url, "now", undefined, "GET")).body["nowMs"] as number;
    const after = (await control(emu.url, "advance", { seconds: 43_200 })).body["nowMs"] as number;
    expect(after - before).toBeGreaterThanOrEqual(43_200_000);
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body).toEqual({
      ok: false,
      error: "token_expired",
    });
    const creds = {
      clientId: str(app, "clientId"),
      clientSecret: str(app, "clientSecret"),
      appId: "",
      signingSecret: "",
    };
    expect((await refresh(emu, str(install, "refresh_token"), creds)).body["ok"]).toBe(true);
    expect((await control(emu.url, "counters", undefined, "GET")).body).toMatchObject({
      refreshes: 1,
      maxPresentations: 1,
    });
    // The same refresh token again (inside its grace window, so it succeeds) moves the max; the totals
    // carry no per-token map.
    await refresh(emu, str(install, "refresh_token"), creds);
    const full = (await control(emu.url, "counters", undefined, "GET")).body;
    const totals = (await control(emu.url, "counterTotals", undefined, "GET")).body;
    expect(totals).toEqual({
      calls: full["calls"],
      maxPresentations: 2,
      invalidRefreshTokenAnswers: full["invalidRefreshTokenAnswers"],
      refreshes: 2,
    });
    expect((await control(emu.url, "resetCounters")).body).toEqual({ ok: true });
    expect((await control(emu.url, "counters")).body["refreshes"]).toBe(0);
    expect((await control(emu.url, "counterTotals")).body["maxPresentations"]).toBe(0);
    expect(
      (await control(emu.url, "fault", { method: "auth.test", kind: "internal_error", times: 1 })).body,
    ).toEqual({ ok: true });
    expect((await api(emu, "auth.test")).body).toEqual({ ok: false, error: "internal_error" });
    await control(emu.url, "setRateLimit", { method: "auth.test", perMinute: 0 });
    expect((await api(emu, "auth.test")).status).toBe(429);
    await control(emu.url, "setRateLimit", { method: "auth.test", perMinute: null });
    await control(emu.url, "setLatency", { ms: 0 });
    expect((await control(emu.url, "setAuthorize", { mode: "approve" })).body).toMatchObject({
      mode: "approve",
    });
    await control(emu.url, "uninstall", { clientId: app["clientId"], teamId: team["teamId"] });
    expect((await control(emu.url, "flushEvents")).body).toHaveLength(2);
    expect((await control(emu.url, "deliveries", undefined, "GET")).body).toHaveLength(2);
  });

  it("answers bad calls with 400/404/405 and a message", async () => {
    const emu = await emulator();
    expect(
      await control(emu.url, "setTokenRotation", { clientId: emu.demoApp.clientId, enabled: false }),
    ).toEqual({
      status: 400,
      body: {
        ok: false,
        error: "token rotation may not be turned off once it is turned on (slack-api.md §3.1)",
      },
    });
    expect((await control(emu.url, "advance", { seconds: "x" })).status).toBe(400);
    expect((await control(emu.url, "nope")).status).toBe(404);
    expect((await control(emu.url, "advance", undefined, "GET")).status).toBe(405);
    expect((await control(emu.url, "tokenInfo", { token: "xoxb-unknown" })).body).toEqual({
      ok: false,
      error: "unknown token",
    });
  });
});

describe("tokenwarden emulator slack (CLI)", () => {
  it("starts, prints the base URL and demo credentials, serves, and exits cleanly on SIGTERM", async () => {
    const root = join(import.meta.dirname, "../..");
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "emulator", "slack", "--port", "0", "--access-ttl", "60"],
      {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m?.[1] && out.includes("SLACK_SIGNING_SECRET=")) resolve(m[1]);
      });
      child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    expect(out).toMatch(/SLACK_CLIENT_ID=\d+\.\d+/);
    expect(out).toMatch(/SLACK_CLIENT_SECRET=[0-9a-f]{32}/);
    const clientId = /SLACK_CLIENT_ID=(\S+)/.exec(out)?.[1] ?? "";
    const install = (await control(url, "install", { clientId })).body;
    expect(install["expires_in"]).toBe(60);
    const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
  }, 20_000);
});
