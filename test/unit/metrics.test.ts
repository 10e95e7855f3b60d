// /metrics reads tokenwarden_connections from the store on every scrape. A failed read (the database
// down or slow) must cost that gauge only: the in-process series are what shows the outage.
import { describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import type { Logger, Store } from "../../src/core/ports.js";
import { createMetrics, providerFlagsOf } from "../../src/server/metrics.js";

function recordingLogger(): Logger & { warned: Array<{ obj: object; msg: string | undefined }> } {
  const warned: Array<{ obj: object; msg: string | undefined }> = [];
  return { warned, debug() {}, info() {}, error() {}, warn: (obj, msg) => warned.push({ obj, msg }) };
}

describe("metrics while the store is down", () => {
  it("serves the in-process series and leaves out the connections gauge, logging why", async () => {
    const logger = recordingLogger();
    const metrics = createMetrics(logger);
    let down = false;
    const store = {
      countConnectionsByStatus: async () => {
        if (down)
          throw new TokenwardenError(
            "store_unavailable",
            "SQLite countConnectionsByStatus failed (SQLITE_BUSY)",
          );
        return { active: 3, refresh_failing: 0, needs_reauth: 1 };
      },
    } as unknown as Store;
    metrics.bind({ store, cacheStats: () => ({ hits: 1, misses: 1 }) });
    metrics.observeRefresh({ provider: "slack", kind: "bot", outcome: "refreshed", durationMs: 120 });
    metrics.observeWebhook("delivered");
    expect(await metrics.registry.metrics()).toContain('tokenwarden_connections{status="active"} 3');

    down = true;
    const text = await metrics.registry.metrics();
    expect(text).toContain('tokenwarden_refreshes_total{provider="slack",outcome="refreshed"} 1');
    expect(text).toContain('tokenwarden_webhook_deliveries_total{outcome="delivered"} 1');
    expect(text).toContain("tokenwarden_token_cache_hit_ratio 0.5");
    // The last count is not served as if it were current.
    expect(text).not.toMatch(/^tokenwarden_connections\{/m);
    expect(logger.warned).toHaveLength(1);
    expect(logger.warned[0]?.msg).toContain("tokenwarden_connections");

    down = false;
    expect(await metrics.registry.metrics()).toContain('tokenwarden_connections{status="needs_reauth"} 1');
  });
});

// Behind a pooler that passes no notification on, every token read goes to the store: correct, but
// an operator must be able to see it rather than guess it from a hit ratio.
describe("the change feed gauge", () => {
  const counts = async () => ({ active: 0, refresh_failing: 0, needs_reauth: 0 });
  it("is 1 while the store hears other processes' changes, 0 while not, 1 where none is needed", async () => {
    let hears = true;
    const store = {
      countConnectionsByStatus: counts,
      hearsChanges: () => hears,
    } as unknown as Store;
    const metrics = createMetrics(recordingLogger());
    metrics.bind({ store, cacheStats: () => ({ hits: 0, misses: 0 }) });
    expect(await metrics.registry.metrics()).toContain("tokenwarden_change_feed_up 1");
    hears = false;
    expect(await metrics.registry.metrics()).toContain("tokenwarden_change_feed_up 0");
    const sqlite = createMetrics(recordingLogger());
    sqlite.bind({
      store: { countConnectionsByStatus: counts } as unknown as Store,
      cacheStats: () => ({ hits: 0, misses: 0 }),
    });
    expect(await sqlite.registry.metrics()).toContain("tokenwarden_change_feed_up 1");
  });
});

// A refresher that falls behind (none running, a paused or failing provider) shows nowhere else until
// tokens expire: the backlog and its lag are what an operator alerts on.
describe("the refresh backlog gauges", () => {
  const counts = async () => ({ active: 0, refresh_failing: 0, needs_reauth: 0 });
  const store = { countConnectionsByStatus: counts } as unknown as Store;

  it("show each provider's due refreshes and lag from one read per scrape, and leave both out when it fails", async () => {
    const logger = recordingLogger();
    const metrics = createMetrics(logger);
    let reads = 0;
    let down = false;
    metrics.bind({
      store,
      cacheStats: () => ({ hits: 0, misses: 0 }),
      refreshBacklog: async () => {
        reads++;
        if (down) throw new TokenwardenError("store_unavailable", "PostgreSQL refreshBacklog failed");
        return [
          { provider: "slack", due: 120, oldestDueAt: new Date(1_000), lagSeconds: 42.5 },
          { provider: "other", due: 0, oldestDueAt: null, lagSeconds: 0 },
        ];
      },
    });
    const text = await metrics.registry.metrics();
    expect(text).toContain('tokenwarden_refresh_backlog{provider="slack"} 120');
    expect(text).toContain('tokenwarden_refresh_lag_seconds{provider="slack"} 42.5');
    expect(text).toContain('tokenwarden_refresh_backlog{provider="other"} 0');
    expect(text).toContain('tokenwarden_refresh_lag_seconds{provider="other"} 0');
    expect(reads).toBe(1);

    down = true;
    const failed = await metrics.registry.metrics();
    expect(failed).not.toMatch(/^tokenwarden_refresh_(backlog|lag_seconds)\{/m);
    expect(failed).toContain("tokenwarden_change_feed_up 1"); // the rest of the scrape is served
    expect(logger.warned.map((w) => w.msg).join("\n")).toContain("refresh backlog");
    expect(reads).toBe(2);
  });

  it("flag a misconfigured provider with 1, a working one with 0", async () => {
    const metrics = createMetrics(recordingLogger());
    let misconfigured = true;
    metrics.bind({
      store,
      cacheStats: () => ({ hits: 0, misses: 0 }),
      providerFlags: async () => [{ provider: "slack", misconfigured }],
    });
    expect(await metrics.registry.metrics()).toContain(
      'tokenwarden_provider_misconfigured{provider="slack"} 1',
    );
    misconfigured = false;
    expect(await metrics.registry.metrics()).toContain(
      'tokenwarden_provider_misconfigured{provider="slack"} 0',
    );
  });
});

describe("providerFlagsOf", () => {
  it("reads a provider as misconfigured while this process holds it back, whatever the store says", async () => {
    const states: Record<string, { status: string; appliesHere: boolean }> = {
      // Refused here while the store was down: the flag never reached it.
      slack: { status: "ok", appliesHere: true },
      // Another process's refusal of other client credentials (a rollout): not this one's.
      other: { status: "misconfigured", appliesHere: false },
    };
    const warden = {
      providers: ["slack", "other"],
      providerState: async (p: string) => states[p],
    } as unknown as Parameters<typeof providerFlagsOf>[0];
    expect(await providerFlagsOf(warden)).toEqual([
      { provider: "slack", misconfigured: true },
      { provider: "other", misconfigured: false },
    ]);
  });
});

// Prometheus alerts on a counter's increase(); a series that first appears at 1 has increased by
// nothing, so the first abandoned webhook (or dead credential) after a restart never fired the alert
// the README recommends. Every outcome is exported from the start, at 0.
describe("counters an operator alerts on", () => {
  it("are exported at 0 for every outcome before anything happened", async () => {
    const metrics = createMetrics(recordingLogger());
    const store = {
      countConnectionsByStatus: async () => ({ active: 0, refresh_failing: 0, needs_reauth: 0 }),
    } as unknown as Store;
    metrics.bind({ store, cacheStats: () => ({ hits: 0, misses: 0 }), providers: ["slack"] });
    const text = await metrics.registry.metrics();
    for (const outcome of ["delivered", "failed", "abandoned"])
      expect(text).toContain(`tokenwarden_webhook_deliveries_total{outcome="${outcome}"} 0`);
    for (const outcome of ["refreshed", "transient", "dead", "misconfigured"])
      expect(text).toContain(`tokenwarden_refreshes_total{provider="slack",outcome="${outcome}"} 0`);
  });
});
