// serve's graceful shutdown has a budget: a request waiting on a refresh that hangs, or a health check
// that hangs, does not hold the process past it (README "Background work and shutdown"). The hangs
// last a minute; the test's own timeout (15 s) is what an unbounded shutdown would run into.
import { connect } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { API_KEY, openServerHarness, type ServerHarness } from "./server-harness.js";

const HOUR_S = 3_600;

describe("serve shutdown", () => {
  let h: ServerHarness;
  beforeEach(async () => {
    h = await openServerHarness("sqlite");
  });
  afterEach(async () => {
    await h?.close();
  });

  const slowProvider = { providerTimeoutMs: 60_000, leaseMs: 90_000, waitTimeoutMs: 120_000 };

  it("cuts requests still in flight at the budget and closes the store, though a refresh hangs", {
    timeout: 15_000,
  }, async () => {
    const server = await h.start({ shutdownTimeoutMs: 1_000, timings: slowProvider });
    const teamId = await h.installAndImport("hang");
    h.clock.advance(12 * HOUR_S * 1000); // the token is due; the refresh will hang
    h.emu.control.advance(12 * HOUR_S);
    h.emu.control.fault("oauth.v2.access", { kind: "hang", times: 1, hangMs: 60_000 });
    const inFlight = fetch(`${server.url}/v1/connections/${teamId}/token`, {
      headers: { authorization: `Bearer ${h.env["TOKENWARDEN_API_KEY"]}` },
    }).then(
      (r) => r.status,
      () => "cut" as const,
    );
    await expect.poll(() => h.emu.control.counters().calls["oauth.v2.access"] ?? 0).toBe(1);
    await server.close();
    expect(await inFlight).toBe("cut");
  });

  it("does not wait out a health check that hangs", { timeout: 15_000 }, async () => {
    await h.installAndImport("checked");
    h.emu.control.fault("auth.test", { kind: "hang", times: 1, hangMs: 60_000 });
    const server = await h.start({
      shutdownTimeoutMs: 1_000,
      timings: slowProvider,
      healthChecks: { periodMs: 3_600_000, perSecond: 100 },
    });
    await expect.poll(() => h.emu.control.counters().calls["auth.test"] ?? 0).toBe(1);
    await server.close(); // returns within the budget (and a 2 s floor for refreshes), not after the hang
  });

  // Only idle keep-alive connections are reaped at shutdown: a request arriving on a busy one still
  // reaches the server, and its refusal must have the contract's shape (README "Routes").
  it("answers a request on a busy keep-alive connection during shutdown with { error: { code, message } }", {
    timeout: 20_000,
  }, async () => {
    const teamId = await h.installAndImport("drain");
    h.emu.control.setLatency(1_500, "auth.test");
    const url = new URL(h.server.url);
    const socket = connect(Number(url.port), url.hostname);
    let raw = "";
    socket.on("data", (c: Buffer) => {
      raw += c.toString("utf8");
    });
    const ended = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    const request = (path: string, method = "POST") =>
      `${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\nContent-Length: 0\r\n\r\n`;
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.write(request(`/v1/proxy/${teamId}/auth.test`)); // in flight for 1.5 s
    await new Promise((resolve) => setTimeout(resolve, 300));
    const closing = h.server.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.write(request(`/v1/connections/${teamId}`, "GET")); // arrives while the server drains
    await closing;
    await ended;
    const answers = raw
      .split(/HTTP\/1\.1 /)
      .filter((s) => s !== "")
      .map((s) => ({
        status: Number(s.slice(0, 3)),
        head: s.slice(0, s.indexOf("\r\n\r\n")),
        body: s.slice(s.indexOf("\r\n\r\n") + 4),
      }));
    expect(answers[0]?.status, raw).toBe(200); // the request in flight finished
    expect(answers[1]?.status, raw).toBe(503);
    expect(answers[1]?.head.toLowerCase()).toContain("connection: close");
    expect(JSON.parse(answers[1]?.body ?? "")).toEqual({
      error: { code: "shutting_down", message: expect.any(String) },
    });
  });
});
