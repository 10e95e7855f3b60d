// What an operator alerts on before customers notice: refreshes falling behind (no refresher running,
// a provider paused or failing) and a provider whose client credentials were refused. Read by a real
// scrape of a server on each store.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { openServerHarness, type ServerHarness } from "./server-harness.js";

const HOUR_MS = 3_600_000;

describe.each(STORE_KINDS)("/metrics: the refresh backlog and provider flags (%s)", (kind) => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness(kind);
  });
  afterAll(async () => {
    await h?.close();
  });

  const scrape = async () => (await fetch(`${h.server.url}/metrics`)).text();
  const gauge = (text: string, name: string) =>
    Number(new RegExp(`^${name}\\{provider="slack"\\} (\\S+)$`, "m").exec(text)?.[1]);

  it("counts due refreshes and how overdue the oldest is, until a refresher catches up", async () => {
    const teamId = await h.installAndImport("Backlog");
    const [credential] = (await h.server.warden.connections.get(teamId)).credentials;
    const expiresAtMs = credential?.expiresAtMs ?? Number.NaN;
    expect(expiresAtMs).toBeGreaterThan(h.clock.now());
    let text = await scrape();
    expect(gauge(text, "tokenwarden_refresh_backlog")).toBe(0);
    expect(gauge(text, "tokenwarden_refresh_lag_seconds")).toBe(0);

    // No refresher runs in this server: at expiry the refresh (due ahead of it) is still waiting,
    // and its lag grows with the clock.
    h.clock.set(expiresAtMs);
    text = await scrape();
    expect(gauge(text, "tokenwarden_refresh_backlog")).toBe(1);
    const lag = gauge(text, "tokenwarden_refresh_lag_seconds");
    expect(lag).toBeGreaterThan(0);
    h.clock.advance(HOUR_MS);
    expect(gauge(await scrape(), "tokenwarden_refresh_lag_seconds")).toBeCloseTo(lag + 3_600, 3);

    expect(await h.server.warden.refreshDue()).toBe(1);
    text = await scrape();
    expect(gauge(text, "tokenwarden_refresh_backlog")).toBe(0);
    expect(gauge(text, "tokenwarden_refresh_lag_seconds")).toBe(0);
    expect(gauge(text, "tokenwarden_provider_misconfigured")).toBe(0);
  });

  // A failing provider backs each credential off, which moves its next run past now: counted from
  // that, the lag stayed at seconds through an outage while the tokens ran out, and the alert the
  // README recommends never fired. It is counted from when the refresh first fell due.
  it("keeps counting a refresh the provider keeps failing, from when it first fell due", async () => {
    const teamId = await h.installAndImport("Failing");
    const [credential] = (await h.server.warden.connections.get(teamId)).credentials;
    const expiresAtMs = credential?.expiresAtMs ?? Number.NaN;
    // Half an hour before expiry the refresh is overdue (Slack's margin is two hours); Slack fails
    // every refresh due.
    h.clock.set(expiresAtMs - HOUR_MS / 2);
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1_000 });
    onTestFinished(() => h.emu.control.clearFaults());
    expect(await h.server.warden.refreshDue()).toBeGreaterThan(0);
    const failed = (await h.server.warden.connections.get(teamId)).credentials[0];
    expect(failed?.status).toBe("refresh_failing");
    expect(failed?.nextAttemptAtMs).toBeGreaterThan(h.clock.now());

    const text = await scrape();
    expect(gauge(text, "tokenwarden_refresh_backlog")).toBeGreaterThanOrEqual(1);
    expect(gauge(text, "tokenwarden_refresh_lag_seconds")).toBeGreaterThan(HOUR_MS / 1000);

    h.emu.control.clearFaults();
    h.clock.advance(60_000); // past the backoff
    await h.server.warden.refreshDue();
    expect(gauge(await scrape(), "tokenwarden_refresh_backlog")).toBe(0);
    expect(gauge(await scrape(), "tokenwarden_refresh_lag_seconds")).toBe(0);
  });

  it("shows a provider whose client secret Slack refused, until a refresh goes through again", async () => {
    const teamId = await h.installAndImport("Refused");
    h.emu.control.fault("oauth.v2.access", { kind: "error", error: "bad_client_secret", times: 1 });
    await h.server.warden.connections.refresh(teamId).catch(() => {});
    expect(gauge(await scrape(), "tokenwarden_provider_misconfigured")).toBe(1);
    h.clock.advance(11_000); // past the probe spacing of a flagged provider
    await h.server.warden.connections.refresh(teamId);
    expect(gauge(await scrape(), "tokenwarden_provider_misconfigured")).toBe(0);
  });
});
