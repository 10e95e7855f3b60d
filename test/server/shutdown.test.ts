// serve's graceful shutdown has a budget: a request waiting on a refresh that hangs does not hold the
// process past it (README "Background work and shutdown"). The bound asserted is ten times the budget
// and a sixth of the hang, so only an unbounded shutdown fails it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openServerHarness, type ServerHarness } from "./server-harness.js";

const HOUR_S = 3_600;

describe("serve shutdown", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite");
  });
  afterAll(async () => {
    await h?.close();
  });

  it("cuts requests still in flight at the budget and closes the store, though a refresh hangs", async () => {
    const server = await h.start({
      shutdownTimeoutMs: 1_000,
      timings: { providerTimeoutMs: 60_000, leaseMs: 90_000, waitTimeoutMs: 120_000 },
    });
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
    const started = performance.now();
    await server.close();
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(await inFlight).toBe("cut");
  });
});
