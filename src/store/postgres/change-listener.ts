import { randomUUID } from "node:crypto";
import pg from "pg";

const MAX_RETRY_MS = 5_000;

export interface ListenerTimings {
  /** How often the idle LISTEN connection is asked for a `SELECT 1`. */
  heartbeatMs: number;
  /** A heartbeat not answered by then means the connection is gone. */
  heartbeatTimeoutMs: number;
}

/**
 * A LISTEN connection only receives: one a NAT or firewall drops without a FIN or RST raises no
 * error, and would leave this process deaf, serving cached tokens another process has replaced or
 * killed, until their refresh margin (hours). So can one that answers queries but never passes a
 * notification on: PgBouncer in transaction mode runs the LISTEN on a server connection it then
 * lends to others. The heartbeat is a notification the listener must receive, so it finds either out
 * within 15 s; and a connection is only listened on once one has come back. It is sent from another
 * session: PostgreSQL delivers a session its own notifications, and such a pooler often runs the
 * NOTIFY on the very server connection holding the LISTEN (PgBouncer reuses the last one freed), so
 * a heartbeat the listener sent itself came back while other processes' notifications were lost.
 */
const DEFAULT_TIMINGS: ListenerTimings = { heartbeatMs: 10_000, heartbeatTimeoutMs: 5_000 };

/** The payload that says "any credential may have changed" (a batch too large to list). */
export const EVERYTHING = "*";

/** What a heartbeat's payload starts with: `!` and a space are in no credential key. */
const HEARTBEAT_PREFIX = "! heartbeat ";

/**
 * Keys remembered at most: every credential any process changes gets one, so without a bound the map
 * grows to the whole table in every process. Past it, every key counts as changed (each cached token
 * is read again once), and the map starts empty.
 */
const DEFAULT_MAX_KEYS = 100_000;

/**
 * Turns `NOTIFY` from other processes into cheap, synchronous change stamps.
 * Every transaction that changes credentials notifies `channel` once, with
 * their keys one per line (or `*` for all); a dedicated connection LISTENs and
 * records each key's change. While the listener is down, or after it reconnects, notifications
 * may have been missed, so every key counts as changed.
 *
 * Stamps come from one counter that only grows: a change gives its key the next value, and
 * "everything changed" raises the floor every key's stamp is at least. So a stamp never comes back
 * to a value a cache entry was filled under, whatever was forgotten in between.
 *
 * NOTE: a stamp moves when the notification arrives, a moment after the
 * commit; in that window a cache may serve the previous token, which is
 * still valid (refreshes happen ahead of expiry) and whose writes are fenced.
 */
export class ChangeListener {
  readonly #config: pg.ClientConfig;
  readonly #channel: string;
  /** Each key's stamp since its last change, when that is above the floor. */
  readonly #perKey = new Map<string, number>();
  readonly #maxKeys: number;
  #counter = 0;
  #floor = 0;
  #client: pg.Client | null = null;
  #closed = false;
  readonly #timings: ListenerTimings;
  #retryMs = 100;
  #timer: NodeJS.Timeout | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  /** Settles the heartbeat waiting for its payload to come back, by payload. */
  readonly #echoes = new Map<string, () => void>();
  /** The session heartbeats are sent from: any but the listening one (see DEFAULT_TIMINGS). */
  readonly #sender: pg.Pool;

  private constructor(config: pg.ClientConfig, channel: string, timings: ListenerTimings, maxKeys: number) {
    this.#config = config;
    this.#channel = channel;
    this.#timings = timings;
    this.#maxKeys = maxKeys;
    this.#sender = new pg.Pool({
      ...config,
      max: 1,
      // Kept between two heartbeats, so each does not pay a new connection.
      idleTimeoutMillis: timings.heartbeatMs * 3,
      query_timeout: timings.heartbeatTimeoutMs,
      application_name: "tokenwarden-listener-heartbeat",
    });
    this.#sender.on("error", () => {});
  }

  /**
   * Connects and LISTENs before resolving, so no change after `open()` goes unseen. A connection
   * that works but passes no notification on (a transaction-mode pooler) is no reason to refuse to
   * start: the listener then starts deaf (every stamp reads as changed, so caches read the store)
   * and keeps trying; `deaf` says so.
   */
  static async start(
    config: pg.ClientConfig,
    channel: string,
    timings: ListenerTimings = DEFAULT_TIMINGS,
    maxKeys = DEFAULT_MAX_KEYS,
  ): Promise<ChangeListener> {
    const listener = new ChangeListener(config, channel, timings, maxKeys);
    try {
      await listener.#connect();
    } catch (error) {
      if (!(error instanceof NoEcho)) {
        await listener.#sender.end().catch(() => {});
        throw error;
      }
      listener.#scheduleReconnect();
    }
    listener.#startHeartbeat();
    return listener;
  }

  /** True while no connection is known to deliver notifications: every stamp then reads as changed. */
  get deaf(): boolean {
    return this.#client === null;
  }

  stamp(key: string): number {
    if (this.#client === null) this.#everything(); // deaf: assume everything changed
    const changed = this.#perKey.get(key);
    return changed !== undefined && changed > this.#floor ? changed : this.#floor;
  }

  /** Also called for this process's own commits, which need not wait for the echo. */
  bump(key: string): void {
    if (this.#perKey.size >= this.#maxKeys && !this.#perKey.has(key)) this.#everything();
    this.#perKey.set(key, ++this.#counter);
  }

  /** How many keys are remembered (bounded by maxKeys). */
  get size(): number {
    return this.#perKey.size;
  }

  #everything(): void {
    this.#floor = ++this.#counter;
    this.#perKey.clear();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
    await this.#sender.end().catch(() => {});
  }

  async #connect(): Promise<void> {
    // Named, so an operator (or a test) can find it in pg_stat_activity.
    const client = new pg.Client({
      ...this.#config,
      application_name: "tokenwarden-listener",
      keepAlive: true,
      query_timeout: this.#timings.heartbeatTimeoutMs,
    });
    client.on("notification", (message) => {
      if (message.channel !== this.#channel || message.payload === undefined) return;
      if (message.payload.startsWith(HEARTBEAT_PREFIX)) this.#echoes.get(message.payload)?.();
      else if (message.payload === EVERYTHING) this.#everything();
      else for (const key of message.payload.split("\n")) this.bump(key);
    });
    client.on("error", () => this.#lost(client));
    client.on("end", () => this.#lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.#channel}"`);
      await this.#echo();
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#client = client;
    this.#everything(); // whatever happened while deaf counts as a change
    this.#retryMs = 100;
  }

  #startHeartbeat(): void {
    let beating = false;
    this.#heartbeat = setInterval(() => {
      const client = this.#client;
      if (client === null || beating) return;
      beating = true;
      this.#echo()
        .catch(() => this.#lost(client))
        .finally(() => {
          beating = false;
        });
    }, this.#timings.heartbeatMs);
    this.#heartbeat.unref();
  }

  /**
   * Notifies the channel from the sender's session and waits for the listening connection to
   * receive it; rejects (NoEcho, or the NOTIFY's own error) unless it does within the heartbeat
   * timeout. A listening connection gone silent is found the same way: nothing comes back.
   */
  async #echo(): Promise<void> {
    const payload = `${HEARTBEAT_PREFIX}${randomUUID()}`;
    let timer: NodeJS.Timeout | undefined;
    const echoed = new Promise<void>((resolve, reject) => {
      this.#echoes.set(payload, resolve);
      timer = setTimeout(() => reject(new NoEcho()), this.#timings.heartbeatTimeoutMs);
    });
    echoed.catch(() => {}); // settled below; a rejection before the query returns is not unhandled
    try {
      await Promise.all([this.#sender.query("SELECT pg_notify($1, $2)", [this.#channel, payload]), echoed]);
    } finally {
      clearTimeout(timer);
      this.#echoes.delete(payload);
    }
  }

  #lost(client: pg.Client): void {
    if (client !== this.#client) return;
    this.#client = null;
    this.#everything();
    client.end().catch(() => {});
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#connect().catch(() => {
        this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
        this.#scheduleReconnect();
      });
    }, this.#retryMs);
    // A listener waiting to reconnect must not keep the process alive.
    this.#timer.unref();
  }
}

/** A connection that answered but passed back no notification: it works, and cannot listen. */
class NoEcho extends Error {
  constructor() {
    super("the LISTEN connection passed back no notification (a pooler in transaction mode?)");
  }
}
