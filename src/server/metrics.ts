/**
 * Prometheus metrics, one registry per app (several apps in one test process
 * never share counters). Gauges that mirror the store are read on scrape.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Logger, Store } from "../core/ports.js";
import { STATUSES } from "../core/types.js";
import type { RefreshObservation } from "../engine/context.js";
import type { WebhookOutcome } from "./webhooks/dispatcher.js";

export interface Metrics {
  registry: Registry;
  observeRefresh(o: RefreshObservation): void;
  observeWebhook(outcome: WebhookOutcome): void;
  /** Wires the gauges that are read on scrape. */
  bind(sources: { store: Store; cacheStats: () => { hits: number; misses: number } }): void;
}

/** `logger` hears what a scrape could not read (never a secret: store errors name no value). */
export function createMetrics(logger: Logger): Metrics {
  const registry = new Registry();
  const refreshes = new Counter({
    name: "tokenwarden_refreshes_total",
    help: "Refresh grants sent to a provider, by outcome (refreshed, transient, dead, misconfigured, …)",
    labelNames: ["provider", "outcome"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "tokenwarden_refresh_duration_seconds",
    help: "Latency of refresh grants at the provider",
    labelNames: ["provider"] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
    registers: [registry],
  });
  const webhooks = new Counter({
    name: "tokenwarden_webhook_deliveries_total",
    help: "Webhook delivery attempts by outcome (delivered, failed, abandoned: the last attempt of a dead letter)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  let sources: Parameters<Metrics["bind"]>[0] | null = null;
  new Gauge({
    name: "tokenwarden_connections",
    help: "Connections by status (read from the store on scrape)",
    labelNames: ["status"] as const,
    registers: [registry],
    async collect() {
      if (sources === null) return;
      let counts: Awaited<ReturnType<Store["countConnectionsByStatus"]>>;
      try {
        counts = await sources.store.countConnectionsByStatus();
      } catch (error) {
        // The scrape goes on without this gauge: the other series are what shows the outage. Its
        // samples are dropped rather than left at the last count, which would read as current.
        this.reset();
        logger.warn({ err: error }, "metrics: could not count connections; tokenwarden_connections left out");
        return;
      }
      for (const status of STATUSES) this.set({ status }, counts[status]);
    },
  });
  new Gauge({
    name: "tokenwarden_token_cache_hit_ratio",
    help: "Share of token requests of this process served from memory",
    registers: [registry],
    collect() {
      if (sources === null) return;
      const { hits, misses } = sources.cacheStats();
      this.set(hits + misses === 0 ? 0 : hits / (hits + misses));
    },
  });
  new Gauge({
    name: "tokenwarden_change_feed_up",
    help: "1 while this process hears other processes' token changes (PostgreSQL LISTEN); 0: every token read goes to the store (a lost connection, or a pooler in transaction mode that passes no notification on)",
    registers: [registry],
    collect() {
      if (sources === null) return;
      this.set(sources.store.hearsChanges?.() === false ? 0 : 1);
    },
  });
  // A counter, as Prometheus expects of a running total (rate() works on it): the cache counts on
  // its own, so each scrape adds what it counted since the last one.
  let counted = { hits: 0, misses: 0 };
  const cacheRequests = new Counter({
    name: "tokenwarden_token_cache_requests_total",
    help: "Token requests of this process by result (hit, miss)",
    labelNames: ["result"] as const,
    registers: [registry],
    collect() {
      if (sources === null) return;
      const { hits, misses } = sources.cacheStats();
      if (hits > counted.hits) cacheRequests.inc({ result: "hit" }, hits - counted.hits);
      if (misses > counted.misses) cacheRequests.inc({ result: "miss" }, misses - counted.misses);
      counted = { hits, misses };
    },
  });
  return {
    registry,
    observeRefresh(o) {
      refreshes.inc({ provider: o.provider, outcome: o.outcome });
      latency.observe({ provider: o.provider }, o.durationMs / 1000);
    },
    observeWebhook(outcome) {
      webhooks.inc({ outcome });
    },
    bind(s) {
      sources = s;
    },
  };
}
