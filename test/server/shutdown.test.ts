// serve's graceful shutdown has a budget: a request waiting on a refresh that hangs, or a health check
// that hangs, does not hold the process past it (README "Background work and shutdown"). The hangs
// last a minute; the test's own timeout (15 s) is what an unbounded shutdown would run into.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openServerHarness, type ServerHarness } from "./server-harness.js";

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
});
