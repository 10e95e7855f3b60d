/**
 * Delivers the outbox: at least once, with exponential backoff (honouring a
 * receiver's Retry-After), surviving restarts (rows live in the store), and
 * shared by every `serve` process (rows are leased; PostgreSQL skips rows
 * another instance holds). A receiver answering 2xx has it; anything else,
 * or no answer within the timeout, is tried again later — until the webhook
 * is `giveUpAfterMs` old: then it becomes a dead letter (kept, never retried,
 * logged as an error and counted), so a receiver gone for good does not keep
 * every process retrying forever.
 */
import { nextAttemptAt } from "../../core/backoff.js";
import { parseRetryAfter } from "../../core/classify.js";
import type { Clock, Logger, Random, Store } from "../../core/ports.js";
import type { OutboxMessage } from "../../core/types.js";
import { withTimeout } from "../../engine/timeout.js";
import { webhookBody } from "./outbox.js";
import { signWebhook, WEBHOOK_HEADERS } from "./signature.js";

/** Past this much of an answer's body the connection is dropped rather than read on (16 deliveries run at once). */
const BODY_READ_LIMIT = 64 * 1024;

/** Reads a body to its end, or drops it once it is longer than anyone needs to see. */
async function discardBody(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (body === null) return;
  const reader = body.getReader();
  for (let read = 0; read <= BODY_READ_LIMIT; ) {
    const chunk = await reader.read();
    if (chunk.done) return;
    read += chunk.value.byteLength;
  }
  await reader.cancel();
}

export type WebhookOutcome = "delivered" | "failed" | "abandoned";

export interface DispatcherOptions {
  store: Store;
  url: string;
  secret: string;
  clock: Clock;
  /**
   * The clock receivers share: dates each request's signature timestamp, which they check against their
   * own, and reads a Retry-After's HTTP-date (default: `clock`).
   */
  signingClock?: Clock;
  random: Random;
  logger: Logger;
  owner: string;
  fetch: typeof globalThis.fetch;
  reconnectUrl: (connectionId: string, provider: string) => string | null;
  onDelivery?: (outcome: WebhookOutcome) => void;
  /** Polling interval when the outbox is empty. */
  intervalMs?: number;
  /** A delivery's lease; longer than the request timeout so two processes never send at once. */
  leaseMs?: number;
  timeoutMs?: number;
  batch?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** How long delivered (and abandoned) webhooks are kept, for inspection, before they are pruned. */
  retentionMs?: number;
  /** Age of a webhook after which a failed attempt is its last (default 3 days). */
  giveUpAfterMs?: number;
}

const PRUNE_EVERY_MS = 3_600_000;
const PRUNE_BATCH = 1_000;
/** Batches a pass may prune (each its own statement): an outage's worth of webhooks goes in an hour or two. */
const PRUNE_MAX_BATCHES = 100;

export class WebhookDispatcher {
  readonly #o: Required<Omit<DispatcherOptions, "onDelivery">> & Pick<DispatcherOptions, "onDelivery">;
  #timer: NodeJS.Timeout | null = null;
  #stopped = true;
  /** The background loop's pass while it runs (null between passes). */
  #pass: Promise<number> | null = null;
  readonly #inFlight = new Set<Promise<void>>();
  #nextPruneAtMs = 0;

  constructor(options: DispatcherOptions) {
    this.#o = {
      intervalMs: 1_000,
      timeoutMs: 10_000,
      leaseMs: 30_000,
      batch: 16,
      backoffBaseMs: 1_000,
      backoffMaxMs: 3_600_000,
      retentionMs: 7 * 86_400_000,
      giveUpAfterMs: 3 * 86_400_000,
      signingClock: options.clock,
      ...options,
    };
  }

  /**
   * Delivered and abandoned rows are kept `retentionMs`, then removed hourly, batch after batch until one
   * comes back short, so the outbox stays small: one batch an hour fell behind any deployment sending
   * more than a thousand webhooks an hour.
   */
  async #pruneNowAndThen(): Promise<void> {
    const now = this.#o.clock.now();
    if (now < this.#nextPruneAtMs) return;
    this.#nextPruneAtMs = now + PRUNE_EVERY_MS;
    let pruned = 0;
    for (let i = 0; i < PRUNE_MAX_BATCHES; i++) {
      const n = await this.#o.store.pruneOutbox(now - this.#o.retentionMs, PRUNE_BATCH);
      pruned += n;
      if (n < PRUNE_BATCH) break;
    }
    if (pruned > 0) this.#o.logger.debug({ pruned }, "pruned delivered and abandoned webhooks");
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule(0);
  }

  /** Stops polling and waits (bounded by the request timeout) for deliveries in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#pass?.catch(() => 0);
  }

  /** One pass: claims due messages and delivers them; returns how many were attempted. */
  async tick(): Promise<number> {
    const o = this.#o;
    await this.#pruneNowAndThen();
    const due = await o.store.claimOutbox({
      owner: o.owner,
      nowMs: o.clock.now(),
      leaseMs: o.leaseMs,
      limit: o.batch,
    });
    await Promise.all(
      due.map((m) => {
        const p = this.#deliver(m);
        this.#inFlight.add(p);
        return p.finally(() => this.#inFlight.delete(p));
      }),
    );
    return due.length;
  }

  /** Ticks until nothing is due and nothing is in flight, here or in the background loop (tests, flushes). */
  async drain(maxPasses = 100): Promise<void> {
    for (let i = 0; i < maxPasses; i++) {
      // A background pass whose claim has not come back holds rows this tick cannot claim (leased, or
      // locked on PostgreSQL) and has none in flight yet: it is waited for too, or its webhooks would
      // still be on their way when drain() returns.
      await Promise.allSettled([...this.#inFlight, ...(this.#pass === null ? [] : [this.#pass])]);
      if ((await this.tick()) === 0 && this.#inFlight.size === 0 && this.#pass === null) return;
    }
  }

  async #deliver(m: OutboxMessage): Promise<void> {
    const o = this.#o;
    let failure: string | null = null;
    let retryAfterMs: number | undefined;
    try {
      const res = await withTimeout(o.timeoutMs, (signal) => this.#post(m, signal));
      if (res.status < 200 || res.status >= 300) {
        failure = `http_${res.status}`;
        // Seconds or an HTTP-date (RFC 9110 §10.2.3); a date already past asks for no wait. Held to
        // the longest backoff: a receiver naming next year would keep the webhook from ever being
        // tried again, or given up on as a dead letter. A date is on the receiver's clock, so the
        // wait is measured on this host's (the signing clock), not the database's.
        const ra = parseRetryAfter(res.headers.get("retry-after"), o.signingClock.now());
        if (ra !== undefined && ra > 0) retryAfterMs = Math.min(ra, o.backoffMaxMs);
      }
    } catch (error) {
      failure = error instanceof Error && error.name === "TimeoutError" ? "timeout" : "connection_failed";
    }
    const now = o.clock.now();
    // Whose news it was: a page that did not go out must be followed up with that customer.
    const about = connectionIdOf(m);
    if (failure === null) {
      await o.store.completeOutbox(m.id, o.owner, now);
      o.onDelivery?.("delivered");
      return;
    }
    if (now - m.createdAtMs >= o.giveUpAfterMs) {
      await o.store.abandonOutbox(m.id, o.owner, now, failure);
      o.onDelivery?.("abandoned");
      o.logger.error(
        { webhookId: m.id, type: m.type, ...about, error: failure, attempts: m.attempts + 1 },
        "webhook abandoned: still undeliverable after the retry window; kept in the outbox as a dead letter",
      );
      return;
    }
    const next = nextAttemptAt({
      failureCount: m.attempts + 1,
      nowMs: now,
      random01: o.random.next(),
      baseMs: o.backoffBaseMs,
      maxMs: o.backoffMaxMs,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    });
    await o.store.retryOutbox(m.id, o.owner, next, failure);
    o.onDelivery?.("failed");
    o.logger.warn(
      { webhookId: m.id, type: m.type, ...about, error: failure, attempts: m.attempts + 1 },
      "webhook delivery failed; will retry",
    );
  }

  /**
   * One signed POST; the answer's body is read inside the deadline too, so a stalled receiver times out,
   * but only its first bytes: the status is the answer.
   */
  async #post(m: OutboxMessage, signal: AbortSignal): Promise<Response> {
    const o = this.#o;
    const body = webhookBody(m, o.reconnectUrl);
    const timestamp = Math.floor(o.signingClock.now() / 1000);
    const res = await o.fetch(o.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "tokenwarden-webhooks",
        [WEBHOOK_HEADERS.id]: m.id,
        [WEBHOOK_HEADERS.event]: m.type,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signWebhook(o.secret, timestamp, body),
      },
      body,
      redirect: "manual",
      signal,
    });
    await discardBody(res.body).catch(() => undefined);
    return res;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      const pass = this.tick();
      this.#pass = pass;
      pass
        .finally(() => {
          if (this.#pass === pass) this.#pass = null;
        })
        .then((n) => this.#schedule(n > 0 ? 0 : this.#o.intervalMs))
        .catch((error: unknown) => {
          this.#o.logger.warn({ err: error }, "webhook pass failed; retrying");
          this.#schedule(this.#o.intervalMs);
        });
    }, delayMs);
    this.#timer.unref();
  }
}

/** The connection a webhook is about, for its log lines (a provider's webhook names none). */
function connectionIdOf(m: OutboxMessage): { connectionId?: string } {
  const id = m.payload["connection_id"];
  return typeof id === "string" ? { connectionId: id } : {};
}
