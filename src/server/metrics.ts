/**
 * Prometheus metrics, one registry per app (several apps in one test process
 * never share counters). Gauges that mirror the store are read on scrape.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Logger, Store } from "../core/ports.js";
import { STATUSES } from "../core/types.js";
import { REFRESH_OUTCOMES, type RefreshObservation } from "../engine/context.js";
import type { RefreshBacklogReport, Warden } from "../engine/warden.js";
import type { WebhookOutcome } from "./webhooks/dispatcher.js";

export interface Metrics {
  registry: Registry;
  observeRefresh(o: RefreshObservation): void;
  observeWebhook(outcome: WebhookOutcome): void;
  /** Wires the gauges that are read on scrape. */
  bind(sources: MetricSources): void;
}

export interface MetricSources {
  store: Store;
  cacheStats: () => { hits: number; misses: number };
  /** The providers configured here: their refresh counters are exported at 0 from the start. */
  providers?: readonly string[];
  /** Per provider, the refreshes due and not yet done (`warden.refreshBacklog()`). */
  refreshBacklog?: () => Promise<RefreshBacklogReport[]>;
  /** Per provider, whether it is flagged misconfigured for this process (`warden.providerState()`). */
  providerFlags?: () => Promise<Array<{ provider: string; misconfigured: boolean }>>;
}

const WEBHOOK_OUTCOMES: readonly WebhookOutcome[] = ["delivered", "failed", "abandoned"];

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
  // A series that first appears at 1 has not increased as far as Prometheus' increase() can tell, so
  // the first abandoned webhook (or dead credential) after a start would fire no alert: every outcome
  // is exported from the start, at 0.
  for (const outcome of WEBHOOK_OUTCOMES) webhooks.inc({ outcome }, 0);
  let sources: MetricSources | null = null;
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
  // Both backlog gauges come from one read per scrape (prom-client collects them concurrently).
  const backlog = oncePerScrape(() => sources?.refreshBacklog?.() ?? Promise.resolve([]));
  const backlogGauge = (name: string, help: string, value: (b: RefreshBacklogReport) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["provider"] as const,
      registers: [registry],
      async collect() {
        this.reset();
        let reports: RefreshBacklogReport[];
        try {
          reports = await backlog();
        } catch (error) {
          logger.warn({ err: error }, `metrics: could not read the refresh backlog; ${name} left out`);
          return;
        }
        for (const b of reports) this.set({ provider: b.provider }, value(b));
      },
    });
  backlogGauge(
    "tokenwarden_refresh_backlog",
    "Refreshes due and not yet done, in flight included, across every process sharing the store (counted up to 10,000)",
    (b) => b.due,
  );
  backlogGauge(
    "tokenwarden_refresh_lag_seconds",
    "How long the most overdue refresh has waited past its due time (0 when none is due; one the provider keeps failing counts from when it first fell due); growing: the refreshers are not keeping up, or the provider is failing",
    (b) => b.lagSeconds,
  );
  new Gauge({
    name: "tokenwarden_provider_misconfigured",
    help: "1 while this process holds the provider flagged misconfigured (its client id or secret refused): no token of it can be refreshed",
    labelNames: ["provider"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      if (sources?.providerFlags === undefined) return;
      try {
        for (const f of await sources.providerFlags())
          this.set({ provider: f.provider }, f.misconfigured ? 1 : 0);
      } catch (error) {
        logger.warn(
          { err: error },
          "metrics: could not read the provider flags; tokenwarden_provider_misconfigured left out",
        );
      }
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
      for (const provider of s.providers ?? [])
        for (const outcome of REFRESH_OUTCOMES) refreshes.inc({ provider, outcome }, 0);
    },
  };
}

/**
 * Per provider the warden runs, whether it holds that provider back as misconfigured. `appliesHere`
 * alone: it is true too while this process holds back on its own refusal whose flag the store never
 * got (the store was down when it was refused), when the stored status still reads `ok`.
 */
export function providerFlagsOf(
  warden: Pick<Warden, "providers" | "providerState">,
): Promise<Array<{ provider: string; misconfigured: boolean }>> {
  return Promise.all(
    warden.providers.map(async (provider) => ({
      provider,
      misconfigured: (await warden.providerState(provider)).appliesHere,
    })),
  );
}

/** `read`, shared by every caller within one scrape: the first call of a turn reads, the rest await it. */
function oncePerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | null = null;
  return () => {
    if (pending === null) {
      pending = read();
      const forget = () => {
        pending = null;
      };
      pending.then(forget, forget);
    }
    return pending;
  };
}
