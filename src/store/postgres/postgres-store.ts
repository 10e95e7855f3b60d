import { createHash, randomUUID } from "node:crypto";
import pg from "pg";
import { TokenwardenError } from "../../core/errors.js";
import type {
  ClaimDueOptions,
  ClaimOptions,
  ClaimResult,
  CompletionItem,
  CompletionOutcome,
  CredentialDeletion,
  DueClaim,
  FailureRecord,
  InstallationQuery,
  ListFilter,
  RefreshBacklog,
  RefreshClaim,
  RefreshResult,
  ResealBatch,
  Sealer,
  StatusChange,
  Store,
  UnreadableCredential,
  VerdictChange,
} from "../../core/ports.js";
import { isTimingMs, MAX_TIMING_MS } from "../../core/timing-bounds.js";
import type {
  Connection,
  CredentialKind,
  CredentialRef,
  NewConnection,
  NewEvent,
  OutboxMessage,
  ProviderPause,
  ProviderState,
  Reason,
  Status,
  StoredCredential,
  StoredEvent,
} from "../../core/types.js";
import { sealedPrefix } from "../../crypto/seal.js";
import { completeKeepable, FENCED, STORED_NO_CHANGE, storedOrThrow } from "../completion-outcomes.js";
import {
  checkRingHolds,
  checkRingKeys,
  firstSeenTimes,
  keyFirstSeenSetting,
  resealRows,
  rotatedAwayMarks,
  type SampledRow,
  type SealedTokens,
  samplesUnder,
  sealTokens,
} from "../credential-sealing.js";
import {
  claimPatch,
  claimResultOf,
  completionPatch,
  decideClaim,
  deletionRefused,
  episodeEvents,
  eventsOf,
  failurePatch,
  holdsClaim,
  learnedProviderData,
  newCredentialRecord,
  parkPatch,
  releasePatch,
  renewPatch,
  rollUpStatus,
  statusPatch,
  verdictApplies,
} from "../credential-transitions.js";
import { versionAfter } from "../credential-versions.js";
import { loadMigrations, newerThan } from "../migration-files.js";
import {
  checkMark,
  type NewOutboxRow,
  outboxMessageFromRow,
  outboxRowOfEvent,
  outboxRowOfProviderLift,
  outboxRowOfProviderState,
} from "../outbox-records.js";
import {
  byKind,
  type CredentialPatch,
  type CredentialRecord,
  connectionFromRow,
  credentialColumns,
  credentialFromRecord,
  eventFromRow,
  mergeMetadata,
  openClaimedCredential,
  providerPauseFromRow,
  providerStateFromRow,
  providerStateOver,
  providerStateValues,
  recordFromRow,
  unreadableCredential,
} from "../row-mapping.js";
import {
  checkInstallationQuery,
  checkInstant,
  checkJsonText,
  checkLimit,
  checkListFilter,
  checkNewConnection,
  checkPause,
  checkProvider,
  decodeCursor,
  encodeCursor,
} from "../store-input.js";
import { claimDueSql, completeRefreshesSql, pgArrayLiteral } from "./batch-statements.js";
import { ChangeListener, EVERYTHING } from "./change-listener.js";
import { translatePgError } from "./postgres-errors.js";
import { withSessionOptions } from "./session-options.js";

export interface PostgresStoreOptions {
  /** `postgres://…`; or pass `pool`. */
  connectionString?: string;
  /** An existing pool; the store will not end it on close. */
  pool?: pg.Pool;
  /** Where the tables live (created by migrate()); default `tokenwarden`. */
  schema?: string;
  sealer: Sealer;
  /** Size of the pool the store creates (ignored with `pool`); one more connection LISTENs. */
  poolMax?: number;
  /** Write webhook rows to the outbox with the changes that cause them (the server sets it when webhooks are on). */
  outbox?: boolean;
  /**
   * How long a new connection may take to be established, and a call may wait for a pooled one
   * (default 10 s; a pool passed in keeps its own setting). Then the call fails `store_unavailable`.
   */
  connectTimeoutMs?: number;
  /**
   * How long a migration may wait for a table lock (default 5 s); then nothing is applied and
   * migrate() fails `store_unavailable`, to be run again.
   */
  migrationLockTimeoutMs?: number;
}

/**
 * A migration that alters a table waits for every transaction using it, and every query that
 * arrives meanwhile queues behind that wait: a long transaction (a backup's, a report's) would stall
 * every instance for as long as it runs. Bounded, the migration gives up instead and the instances
 * go on; it is run again at the next start or `tokenwarden migrate`.
 */
const MIGRATION_LOCK_TIMEOUT_MS = 5_000;

/**
 * Without a bound, a database the network stops answering (a failover behind a stale address, a
 * dropped route) holds every call for the system's TCP connect timeout, two minutes on Linux, and a
 * call queued behind a full pool for as long as the pool stays full.
 */
const CONNECT_TIMEOUT_MS = 10_000;

type Row = Record<string, unknown>;
type Client = pg.PoolClient;

interface PendingRenewal {
  claim: RefreshClaim;
  claimUntilMs: number;
  resolve: (holds: boolean) => void;
  reject: (error: unknown) => void;
}

const SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/** Bytes of NOTIFY payload we fill at most (PostgreSQL refuses 8000 and more). */
const NOTIFY_PAYLOAD_LIMIT = 7_900;

/** Lowercase, so the quoted identifier equals the unquoted one users type in psql; short enough for a channel name. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,49}$/;

/**
 * findConnectionsByInstallation's rows, through the expression indexes of migration 0008 ($1
 * provider, $2 team id, $3 enterprise id, $4 limit). A null parameter matches nothing.
 */
export function byInstallationSql(t: { connections: string }): string {
  return `SELECT id FROM ${t.connections}
           WHERE provider = $1 AND (metadata ->> 'team_id') = $2
             AND octet_length(metadata ->> 'team_id') <= 255
          UNION
          SELECT id FROM ${t.connections}
           WHERE provider = $1 AND (metadata ->> 'enterprise_id') = $3
             AND octet_length(metadata ->> 'enterprise_id') <= 255
             AND ((metadata ->> 'team_id') IS NULL OR (metadata ->> 'team_id') = $3)
          ORDER BY id LIMIT $4`;
}

/**
 * The shared store: any number of tokenwarden instances on one PostgreSQL
 * database. Row locks (`SELECT … FOR UPDATE`) make claims single-flight,
 * `FOR UPDATE SKIP LOCKED` spreads due refreshes over instances, and NOTIFY
 * keeps every instance's change stamps current.
 *
 * Lock order, to rule out deadlocks: a transaction that changes a status
 * locks the connection row first, then credential rows; claims lock one
 * credential row only.
 *
 * @example
 * const store = await PostgresStore.open({ connectionString: "postgres://…", sealer });
 * await store.migrate();
 */
export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  /** A lane of its own for claim renewals, so a busy pool never lets a live holder's lease lapse. */
  readonly #heartbeats: pg.Pool;
  #renewals: PendingRenewal[] = [];
  /**
   * A lane for the refresher's two batch statements (claimDue, the batch completion), whose sessions
   * use generic plans: planned once per connection instead of at every execution (PostgreSQL keeps
   * re-planning a statement whose custom plans look cheaper; that was a sixth of its CPU in a
   * storm). Both plans are shaped to hold at any table size without estimates: an index scan and a
   * TID scan; a nested loop on the primary key.
   */
  readonly #batches: pg.Pool;
  readonly #ownsPool: boolean;
  readonly #schema: string;
  readonly #sealer: Sealer;
  readonly #listener: ChangeListener;
  readonly #channel: string;
  readonly #outbox: boolean;
  readonly #migrationLockTimeoutMs: number;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** Fails each call still waiting for a pooled connection when close() begins. */
  readonly #waitingForConnection = new Set<() => void>();
  readonly #t: {
    connections: string;
    credentials: string;
    events: string;
    providerStates: string;
    providerPauses: string;
    outbox: string;
    onceMarks: string;
    settings: string;
  };

  private constructor(options: {
    pool: pg.Pool;
    ownsPool: boolean;
    schema: string;
    sealer: Sealer;
    listener: ChangeListener;
    channel: string;
    heartbeats: pg.Pool;
    batches: pg.Pool;
    outbox: boolean;
    migrationLockTimeoutMs: number;
  }) {
    this.#outbox = options.outbox;
    this.#migrationLockTimeoutMs = options.migrationLockTimeoutMs;
    this.#pool = options.pool;
    this.#heartbeats = options.heartbeats;
    this.#batches = options.batches;
    this.#ownsPool = options.ownsPool;
    this.#schema = options.schema;
    this.#sealer = options.sealer;
    this.#listener = options.listener;
    this.#channel = options.channel;
    const q = `"${options.schema}"`;
    this.#t = {
      connections: `${q}.connections`,
      credentials: `${q}.credentials`,
      events: `${q}.events`,
      providerStates: `${q}.provider_states`,
      providerPauses: `${q}.provider_pauses`,
      outbox: `${q}.outbox`,
      onceMarks: `${q}.once_marks`,
      settings: `${q}.settings`,
    };
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema ?? "tokenwarden";
    if (!SCHEMA_NAME.test(schema)) {
      throw new TokenwardenError(
        "config_invalid",
        "PostgreSQL schema must be 1-50 of a-z, 0-9 and _, not starting with a digit",
      );
    }
    const clientConfig: pg.ClientConfig | undefined =
      options.connectionString !== undefined
        ? { connectionString: options.connectionString }
        : options.pool?.options;
    if (clientConfig === undefined) {
      throw new TokenwardenError("config_invalid", "PostgresStore needs a connectionString or a pool");
    }
    const ownsPool = options.pool === undefined;
    const migrationLockTimeoutMs = wholeMs(
      options.migrationLockTimeoutMs ?? MIGRATION_LOCK_TIMEOUT_MS,
      "migrationLockTimeoutMs",
    );
    if (options.connectTimeoutMs !== undefined) wholeMs(options.connectTimeoutMs, "connectTimeoutMs");
    const connectionTimeoutMillis =
      clientConfig.connectionTimeoutMillis ?? options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    // Named so an operator can find (or terminate) these sessions in pg_stat_activity; a fallback,
    // so an application_name in the URL (or PGAPPNAME) still wins.
    const pool =
      options.pool ??
      new pg.Pool({
        fallback_application_name: "tokenwarden",
        ...clientConfig,
        max: options.poolMax ?? 10,
        connectionTimeoutMillis,
      });
    // An idle client's socket error is emitted on the pool; unhandled it would crash the process.
    // The pool drops that client, and the next query reports any lasting trouble.
    if (ownsPool) pool.on("error", () => {});
    // Schema-qualified, so tests (and tenants) in other schemas never cross-talk.
    const channel = `${schema}.credentials`;
    // A renewal that hangs on a dead connection would let the lease lapse under a live holder (and a
    // takeover send the same token): it times out instead, and the pool replaces that connection.
    const heartbeats = new pg.Pool({
      fallback_application_name: "tokenwarden-renewals",
      ...clientConfig,
      max: 1,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      // The connect timeout is the client's own, not the pool's connectionTimeoutMillis: on a
      // one-connection pool that would also time out renewals waiting their turn behind others,
      // failing them under load (0: none, whatever a pool passed in sets). Without one, a renewal
      // reconnecting to a database the network dropped would hold every later renewal for the
      // system's TCP timeout. On the Client class of a pool passed in, as its other connections.
      connectionTimeoutMillis: 0,
      Client: clientConnectingWithin(connectionTimeoutMillis, options.pool?.options.Client),
      query_timeout: 4_000,
    });
    heartbeats.on("error", () => {});
    const batches = new pg.Pool({
      ...withSessionOptions(clientConfig, "-c plan_cache_mode=force_generic_plan"),
      max: 2,
      idleTimeoutMillis: 30_000,
      connectionTimeoutMillis,
      application_name: "tokenwarden-batches",
    });
    batches.on("error", () => {});
    try {
      const listener = await ChangeListener.start({ ...clientConfig, connectionTimeoutMillis }, channel);
      return new PostgresStore({
        pool,
        ownsPool,
        schema,
        sealer: options.sealer,
        listener,
        channel,
        heartbeats,
        batches,
        outbox: options.outbox === true,
        migrationLockTimeoutMs,
      });
    } catch (error) {
      await heartbeats.end().catch(() => {});
      await batches.end().catch(() => {});
      if (ownsPool) await pool.end().catch(() => {});
      throw translatePgError("open", error);
    }
  }

  async migrate(): Promise<string[]> {
    return this.#migrate().catch((error: unknown) => {
      const cause = error instanceof TokenwardenError ? error.cause : error;
      if (!(cause instanceof pg.DatabaseError) || cause.code !== "55P03") throw error;
      throw new TokenwardenError(
        "store_unavailable",
        `PostgreSQL migrate: a table a migration alters stayed locked by another transaction (a backup's, a report's) for over ${this.#migrationLockTimeoutMs} ms; nothing was applied, and nothing waited behind it longer. Run it again (tokenwarden migrate, or the next start) once that transaction ends`,
        { cause },
      );
    });
  }

  async #migrate(): Promise<string[]> {
    return this.#tx("migrate", async (c) => {
      // Held to the end of this transaction: concurrent migrators run one after another, and
      // the later ones find every version applied. The key is per schema.
      await c.query("SELECT pg_advisory_xact_lock($1::bigint)", [
        advisoryKey(`tokenwarden.migrate.${this.#schema}`),
      ]);
      // PostgreSQL checks the privilege a CREATE … IF NOT EXISTS needs before it looks for the
      // object, so nothing is created that exists already: a role that may only use the tables (the
      // schema migrated ahead of a deploy by another role), or that owns a schema an administrator
      // created for it without CREATE on the database, starts all the same.
      const { rows: schemas } = await c.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [
        this.#schema,
      ]);
      if (schemas.length === 0) await c.query(`CREATE SCHEMA IF NOT EXISTS "${this.#schema}"`);
      await c.query(`SET LOCAL search_path TO "${this.#schema}"`);
      const { rows: tables } = await c.query<{ found: boolean }>(
        "SELECT to_regclass('schema_migrations') IS NOT NULL AS found",
      );
      if (tables[0]?.found !== true) {
        await c.query("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL)");
      }
      const { rows } = await c.query<{ version: number }>("SELECT version FROM schema_migrations");
      const applied = new Set(rows.map((r) => r.version));
      const now: string[] = [];
      const pending = loadMigrations("postgres").filter((m) => !applied.has(m.version));
      // After the advisory lock: concurrent migrators wait for each other as long as it takes.
      if (pending.length > 0) await c.query(`SET LOCAL lock_timeout = ${this.#migrationLockTimeoutMs}`);
      for (const migration of pending) {
        await c.query(migration.sql);
        await c.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
          migration.version,
          migration.name,
        ]);
        now.push(migration.file);
      }
      return now;
    });
  }

  async newerMigrations(): Promise<string[]> {
    const { rows } = await this.#query("newerMigrations", (c) =>
      c.query<{ version: number; name: string }>(
        `SELECT version, name FROM "${this.#schema}".schema_migrations`,
      ),
    );
    return newerThan(loadMigrations("postgres"), rows);
  }

  /**
   * Idempotent, as SQLite's: a second close (a shutdown path and a finally both closing) waits for
   * the first to end the pools, and does nothing more.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    for (const fail of this.#waitingForConnection) fail();
    this.#waitingForConnection.clear();
    await this.#listener.close();
    await this.#heartbeats.end();
    await this.#batches.end();
    if (this.#ownsPool) await this.#pool.end();
  }

  async ping(): Promise<void> {
    await this.#query("ping", (c) => c.query("SELECT 1"));
  }

  async putConnection(
    input: NewConnection,
    nowMs: number,
    events: NewEvent[],
    options: { mergeMetadata?: boolean } = {},
  ): Promise<StatusChange> {
    checkNewConnection(input);
    const sealed = input.credentials.map((c) =>
      sealTokens(this.#sealer, { connectionId: input.id, kind: c.kind }, c.tokens),
    );
    const t = this.#t;
    const kinds = new Set<CredentialKind>(input.credentials.map((c) => c.kind));
    const result = await this.#tx("putConnection", async (c) => {
      const old = await this.#lockConnection(c, input.id);
      const previous = await this.#records(c, "WHERE connection_id = $1", [input.id]);
      for (const p of previous) kinds.add(p.kind);
      const versions = new Map(previous.map((r) => [r.kind, r.version]));
      await c.query(
        `INSERT INTO ${t.connections} AS stored
           (id, provider, status, reason, metadata, created_at_ms, updated_at_ms)
         VALUES ($1, $2, 'active', NULL, $3, $4, $4)
         ON CONFLICT (id) DO UPDATE SET provider = excluded.provider,
           metadata = ${options.mergeMetadata ? "stored.metadata || excluded.metadata" : "excluded.metadata"},
           updated_at_ms = excluded.updated_at_ms`,
        [input.id, input.provider, JSON.stringify(input.metadata), nowMs],
      );
      await c.query(`DELETE FROM ${t.credentials} WHERE connection_id = $1`, [input.id]);
      for (const [i, credential] of input.credentials.entries()) {
        const seal = sealed[i] as (typeof sealed)[number];
        await this.#insertCredential(
          c,
          newCredentialRecord(
            input,
            credential,
            seal,
            versionAfter(versions.get(credential.kind) ?? null),
            nowMs,
          ),
        );
      }
      // A new connection starts active; a replaced one starts from its old status (a reconnect recovers).
      const change = await this.#rollUp(c, input.id, old ?? "active", nowMs, events);
      await this.#notify(
        c,
        [...kinds].map((kind) => ({ connectionId: input.id, kind })),
      );
      return { before: old, after: change.after, reason: change.reason };
    });
    this.#bumpLocal([...kinds].map((kind) => ({ connectionId: input.id, kind })));
    return result;
  }

  async getConnection(id: string): Promise<Connection | null> {
    return this.#tx(
      "getConnection",
      async (c) => {
        const { rows } = await c.query(`SELECT * FROM ${this.#t.connections} WHERE id = $1`, [id]);
        const row = rows[0] as Row | undefined;
        if (row === undefined) return null;
        return connectionFromRow(row, await this.#records(c, "WHERE connection_id = $1", [id]));
      },
      SNAPSHOT,
    );
  }

  async listConnections(filter: ListFilter): Promise<{ items: Connection[]; nextCursor: string | null }> {
    const limit = checkLimit(filter.limit, "limit");
    const after = decodeCursor(filter.cursor);
    checkListFilter(filter);
    return this.#tx(
      "listConnections",
      async (c) => {
        const { rows } = await c.query<Row & { id: string }>(
          `SELECT * FROM ${this.#t.connections}
         WHERE ($1::text IS NULL OR provider = $1) AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR id > $3)
         ORDER BY id LIMIT $4`,
          [filter.provider ?? null, filter.status ?? null, after, limit + 1],
        );
        const page = rows.slice(0, limit);
        // One query for all credentials of the page, not one per connection.
        const records = await this.#records(c, "WHERE connection_id = ANY($1::text[])", [
          page.map((r) => r.id),
        ]);
        const byConnection = new Map<string, CredentialRecord[]>();
        for (const r of records)
          byConnection.set(r.connectionId, [...(byConnection.get(r.connectionId) ?? []), r]);
        const last = page.at(-1);
        return {
          items: page.map((r) => connectionFromRow(r, byConnection.get(r.id) ?? [])),
          nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.id) : null,
        };
      },
      SNAPSHOT,
    );
  }

  async findConnectionsByInstallation(query: InstallationQuery): Promise<string[]> {
    const q = checkInstallationQuery(query);
    const { rows } = await this.#query("findConnectionsByInstallation", (c) =>
      c.query<{ id: string }>(byInstallationSql(this.#t), [q.provider, q.teamId, q.enterpriseId, q.limit]),
    );
    return rows.map((r) => r.id);
  }

  async deleteConnection(id: string): Promise<boolean> {
    const t = this.#t;
    let refs: CredentialRef[] = [];
    const deleted = await this.#tx("deleteConnection", async (c) => {
      await this.#lockConnection(c, id);
      refs = (await this.#records(c, "WHERE connection_id = $1", [id])).map(refOf);
      await c.query(`DELETE FROM ${t.events} WHERE connection_id = $1`, [id]);
      await c.query(`DELETE FROM ${t.credentials} WHERE connection_id = $1`, [id]);
      const { rowCount } = await c.query(`DELETE FROM ${t.connections} WHERE id = $1`, [id]);
      await this.#notify(c, refs);
      return (rowCount ?? 0) > 0;
    });
    this.#bumpLocal(refs);
    return deleted;
  }

  async deleteCredential(
    ref: CredentialRef,
    nowMs: number,
    event: NewEvent,
    options: { ifVersion?: number } = {},
  ): Promise<CredentialDeletion> {
    const t = this.#t;
    const outcome = await this.#tx("deleteCredential", async (c): Promise<CredentialDeletion> => {
      // The connection row first, as every multi-credential write takes it: a peer deleting the other
      // credential waits here, so the last one is never deleted by two at once.
      const before = await this.#lockConnection(c, ref.connectionId);
      if (before === null) return { kind: "not_found" };
      const records = await this.#records(c, "WHERE connection_id = $1 ORDER BY kind FOR UPDATE", [
        ref.connectionId,
      ]);
      const refused = deletionRefused(records, ref.kind, options.ifVersion);
      if (refused !== null) return refused;
      await c.query(`DELETE FROM ${t.credentials} WHERE connection_id = $1 AND kind = $2`, [
        ref.connectionId,
        ref.kind,
      ]);
      const change = await this.#rollUp(c, ref.connectionId, before, nowMs, [event]);
      await this.#notify(c, [ref]);
      return { kind: "deleted", change };
    });
    if (outcome.kind === "deleted") this.#bumpLocal([ref]);
    return outcome;
  }

  async updateMetadata(
    id: string,
    patch: Record<string, unknown>,
    nowMs: number,
    options: { onlyMissing?: boolean } = {},
  ): Promise<boolean> {
    checkJsonText(patch, "metadata");
    return this.#tx("updateMetadata", async (c) => {
      const { rows } = await c.query<{ metadata: Record<string, unknown> }>(
        `SELECT metadata FROM ${this.#t.connections} WHERE id = $1 FOR UPDATE`,
        [id],
      );
      const row = rows[0];
      if (row === undefined) return false;
      await c.query(`UPDATE ${this.#t.connections} SET metadata = $2, updated_at_ms = $3 WHERE id = $1`, [
        id,
        JSON.stringify(mergeMetadata(row.metadata, patch, options.onlyMissing)),
        nowMs,
      ]);
      return true;
    });
  }

  async learnProviderData(
    ref: CredentialRef,
    facts: Record<string, string>,
    ifVersion: number,
  ): Promise<boolean> {
    checkJsonText(facts, "provider data");
    return this.#tx("learnProviderData", async (c) => {
      // Locked: a refresh completing meanwhile merges its answer into what this writes, not under it.
      const record = await this.#record(c, ref, true);
      if (record === null || record.version !== ifVersion) return false;
      const providerData = learnedProviderData(record.providerData, facts);
      if (providerData === null) return false;
      await this.#update(c, ref, { providerData });
      return true;
    });
  }

  async getCredential(ref: CredentialRef): Promise<StoredCredential | null> {
    const record = await this.#query("getCredential", (c) => this.#record(c, ref, false));
    return record === null ? null : credentialFromRecord(record, this.#sealer);
  }

  async listCredentials(connectionId: string): Promise<StoredCredential[]> {
    const records = await this.#query("listCredentials", (c) =>
      this.#records(c, "WHERE connection_id = $1", [connectionId]),
    );
    return records.sort(byKind).map((r) => credentialFromRecord(r, this.#sealer));
  }

  async claimRefresh(ref: CredentialRef, options: ClaimOptions): Promise<ClaimResult> {
    return this.#tx("claimRefresh", async (c) => {
      // The row lock serialises claimers across every instance (invariant 1).
      const record = await this.#record(c, ref, true);
      const decision = decideClaim(record, options);
      // Opened before the claim is written: a key problem must not leave a claim (and a journal entry) behind.
      const credential = record === null ? null : credentialFromRecord(record, this.#sealer);
      const open = () => credential as StoredCredential;
      if (decision.kind !== "claim" || record === null) return claimResultOf(decision, open, null);
      const claim: RefreshClaim = {
        ref: { connectionId: ref.connectionId, kind: ref.kind },
        owner: options.owner,
        claimId: randomUUID(),
      };
      await this.#update(c, ref, claimPatch(record, claim, options.nowMs, options.leaseMs, options.sends));
      return claimResultOf(decision, open, { claim, previousAttemptLost: record.refreshInDoubt });
    });
  }

  async renewClaim(claim: RefreshClaim, nowMs: number, leaseMs: number): Promise<boolean> {
    const { claimUntilMs } = renewPatch(nowMs, leaseMs);
    return new Promise((resolve, reject) => {
      this.#renewals.push({ claim, claimUntilMs, resolve, reject });
      // Renewals asked for in one turn (a keeper's tick renews every claim due at once) go out as
      // one statement: one at a time on the one renewal connection, thousands of held claims
      // would queue past a third of their lease.
      if (this.#renewals.length === 1) setImmediate(() => void this.#flushRenewals());
    });
  }

  async #flushRenewals(): Promise<void> {
    // In key order, as #completeActive sends its items.
    const asked = this.#renewals;
    const batch = keyOrder(asked.map((r) => r.claim.ref)).map((n) => asked[n] as PendingRenewal);
    this.#renewals = [];
    const col = (f: (r: PendingRenewal) => string | number) => pgArrayLiteral(batch.map(f));
    try {
      // One fenced statement, no transaction, on a connection of its own: a heartbeat must get
      // through even when the pool is busy with waiters, or the lease lapses under a live holder.
      const { rows } = await this.#heartbeats.query<{ claim_id: string }>(
        `UPDATE ${this.#t.credentials} c SET claim_until_ms = i.until_ms
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                AS i(connection_id, kind, claim_id, claim_owner, until_ms)
          WHERE c.connection_id = i.connection_id AND c.kind = i.kind
            AND c.claim_id = i.claim_id AND c.claim_owner = i.claim_owner
          RETURNING c.claim_id`,
        [
          col((r) => r.claim.ref.connectionId),
          col((r) => r.claim.ref.kind),
          col((r) => r.claim.claimId),
          col((r) => r.claim.owner),
          col((r) => r.claimUntilMs),
        ],
      );
      const renewed = new Set(rows.map((r) => r.claim_id));
      for (const r of batch) r.resolve(renewed.has(r.claim.claimId));
    } catch (error) {
      const translated = translatePgError("renewClaim", error);
      for (const r of batch) r.reject(translated);
    }
  }

  async completeRefresh(
    claim: RefreshClaim,
    result: RefreshResult,
    nowMs: number,
    event: NewEvent,
  ): Promise<boolean> {
    const [outcome] = await this.completeRefreshes([{ claim, result, nowMs, event }]);
    return storedOrThrow(outcome);
  }

  async completeRefreshes(items: CompletionItem[]): Promise<CompletionOutcome[]> {
    return completeKeepable(items, (keepable) => this.#completeRefreshes(keepable));
  }

  async #completeRefreshes(items: CompletionItem[]): Promise<CompletionOutcome[]> {
    if (items.length === 0) return [];
    const sealed = items.map((i) => sealTokens(this.#sealer, i.claim.ref, i.result.tokens));
    const completed = await this.#completeActive(items, sealed);
    this.#bumpLocal(items.filter((i) => completed.has(i.claim.claimId)).map((i) => i.claim.ref));
    // The batch statement has committed its items: one failing item on the general path must not
    // report those as failed (their callers would retry or give up on tokens that are stored).
    return Promise.all(
      items.map(async (item, n): Promise<CompletionOutcome> => {
        if (completed.has(item.claim.claimId)) return STORED_NO_CHANGE;
        try {
          return await this.#completeGeneral(item, sealed[n] as SealedTokens);
        } catch (error) {
          return { kind: "failed", error };
        }
      }),
    );
  }

  /**
   * The common case for a whole batch in one statement and one round trip (a storm is bound by round
   * trips; this replaced nine per refresh): every item whose credential is `active` and whose claim
   * still holds, hence whose connection's rolled-up status cannot change and need not be locked. The
   * SET list is completionPatch() in SQL; the events and the notification commit with it. Returns the
   * claim ids it completed (unique, so they say which items).
   */
  async #completeActive(items: CompletionItem[], sealed: SealedTokens[]): Promise<Set<string>> {
    const t = this.#t;
    // One JSON document for the batch: one native stringify, where fourteen array literals escaped
    // every JSON-valued element again (a sixth of the bytes a storm allocated).
    // In key order: with a nested-loop plan the statement locks rows in the order of its input, as key
    // rotation (resealBatch) does, so they cannot deadlock. Other plans (a hash join) lock in physical
    // order; a deadlock PostgreSQL then breaks costs a retry (#query).
    const order = keyOrder(items.map((i) => i.claim.ref));
    const input = JSON.stringify(
      order.map((n) => {
        const i = items[n] as CompletionItem;
        return {
          connection_id: i.claim.ref.connectionId,
          kind: i.claim.ref.kind,
          claim_id: i.claim.claimId,
          access: sealed[n]?.accessTokenSealed ?? null,
          refresh: sealed[n]?.refreshTokenSealed ?? null,
          token_type: i.result.tokens.tokenType,
          scopes: i.result.tokens.scopes,
          expires_at_ms: i.result.tokens.expiresAtMs,
          now_ms: i.nowMs,
          provider_data: i.result.providerData,
          due_ms: i.result.refreshDueAtMs,
          event_type: i.event.type,
          event_at_ms: i.event.atMs,
          event_data: i.event.data ?? {},
        };
      }),
    );
    const { rows } = await this.#retryingAborted(() =>
      this.#query(
        "completeRefresh",
        (c) =>
          c.query<{ claim_id: string }>({
            name: `${this.#schema}.completeRefreshes`,
            text: completeRefreshesSql(t),
            values: [input, this.#channel, notifyPayload(items.map((i) => i.claim.ref))],
          }),
        this.#batches,
      ),
    );
    return new Set(rows.map((r) => r.claim_id));
  }

  /** Anything else: a fenced-out claim, or a failing or dead credential, in the general transaction. */
  async #completeGeneral(item: CompletionItem, sealed: SealedTokens): Promise<CompletionOutcome> {
    const { claim, result, nowMs, event } = item;
    const outcome = await this.#tx("completeRefresh", async (c): Promise<CompletionOutcome> => {
      const before = await this.#lockConnection(c, claim.ref.connectionId);
      const record = await this.#record(c, claim.ref, true);
      if (before === null || !holdsClaim(record, claim)) return FENCED;
      await this.#update(c, claim.ref, completionPatch(record, sealed, result, nowMs));
      const change = await this.#rollUp(c, claim.ref.connectionId, before, nowMs, [event]);
      await this.#notify(c, [claim.ref]);
      return { kind: "stored", change };
    });
    if (outcome.kind === "stored") this.#bumpLocal([claim.ref]);
    return outcome;
  }

  async failRefresh(
    claim: RefreshClaim,
    failure: FailureRecord,
    nowMs: number,
    event: NewEvent,
  ): Promise<StatusChange | null> {
    const change = await this.#tx("failRefresh", async (c) => {
      const before = await this.#lockConnection(c, claim.ref.connectionId);
      const record = await this.#record(c, claim.ref, true);
      if (before === null || !holdsClaim(record, claim)) return null;
      await this.#update(c, claim.ref, failurePatch(record, failure));
      const rolled = await this.#rollUp(c, claim.ref.connectionId, before, nowMs, [event]);
      await this.#notify(c, [claim.ref]);
      return rolled;
    });
    if (change !== null) this.#bumpLocal([claim.ref]);
    return change;
  }

  async releaseClaim(claim: RefreshClaim): Promise<void> {
    await this.#tx("releaseClaim", async (c) => {
      const record = await this.#record(c, claim.ref, true);
      if (holdsClaim(record, claim)) await this.#update(c, claim.ref, releasePatch(record));
    });
  }

  async setCredentialStatus(
    connectionId: string,
    kinds: CredentialKind[] | "all",
    status: { status: Status; reason: Reason | null; lastError: string | null },
    nowMs: number,
    events: NewEvent[],
    ifVersions?: Partial<Record<CredentialKind, number>>,
    ifIssuedBeforeMs?: number,
  ): Promise<VerdictChange | null> {
    let changed: CredentialRef[] = [];
    const change = await this.#tx("setCredentialStatus", async (c) => {
      const before = await this.#lockConnection(c, connectionId);
      if (before === null) return null;
      const records = await this.#records(c, "WHERE connection_id = $1 ORDER BY kind FOR UPDATE", [
        connectionId,
      ]);
      const applying = records.filter((r) => verdictApplies(r, kinds, ifVersions, status, ifIssuedBeforeMs));
      if (applying.length === 0) return null;
      changed = applying.map(refOf);
      for (const record of applying) await this.#update(c, record, statusPatch(record, status));
      const rolled = await this.#rollUp(c, connectionId, before, nowMs, eventsOf(events, applying));
      await this.#notify(c, changed);
      return { ...rolled, changed: applying.map((r) => r.kind) };
    });
    this.#bumpLocal(changed);
    return change;
  }

  async claimDue(options: ClaimDueOptions): Promise<DueClaim[]> {
    const limit = checkLimit(options.limit, "limit");
    const provider = checkProvider(options.provider);
    const t = this.#t;
    // One statement (batch-statements.ts says how it finds, skips and writes the rows).
    const { rows } = await this.#query(
      "claimDue",
      (c) =>
        c.query({
          name: `${this.#schema}.claimDue`,
          text: claimDueSql(t),
          values: [
            options.nowMs,
            limit,
            options.owner,
            options.leaseMs,
            provider,
            options.leaseNowMs ?? options.nowMs,
          ],
        }),
      this.#batches,
    );
    // RETURNING has no order; hand them out most overdue first, as the scheduler asked.
    const records = rows
      .map(recordFromRow)
      .sort((a, b) => (a.claimPrevRunAtMs ?? 0) - (b.claimPrevRunAtMs ?? 0));
    return this.#openClaimed(records, options);
  }

  /** The claimDue claims whose refresh tokens open; parks (and reports) the rows whose tokens do not. */
  async #openClaimed(records: CredentialRecord[], options: ClaimDueOptions): Promise<DueClaim[]> {
    const claims: DueClaim[] = [];
    const unreadable: UnreadableCredential[] = [];
    for (const r of records) {
      const claim = dueClaimOf(r, options.owner);
      const opening = openClaimedCredential(r, this.#sealer);
      if (opening.kind === "opened") {
        claims.push({ ...claim, credential: opening.credential });
        continue;
      }
      // The statement has committed this claim too: handed back, or the row would sit claimed, journal
      // open, for the whole lease, and then come first in line again.
      const parked = parkPatch(r, options.nowMs);
      try {
        await this.#park(claim, parked);
        unreadable.push(unreadableCredential(r, opening, parked.nextRunAtMs));
      } catch {
        // Not thrown: the batch's other claims are committed and must reach the refresher, or they
        // would sit out their leases with their journals open. This one is reported still held, for
        // the caller to hand back; failing that, it lapses with its lease.
        const claimed: RefreshClaim = { ref: claim.ref, owner: claim.owner, claimId: claim.claimId };
        unreadable.push(unreadableCredential(r, opening, r.claimUntilMs ?? options.nowMs, claimed));
      }
    }
    for (const u of unreadable) options.onUnreadable?.(u);
    return claims;
  }

  /** Writes a parkPatch iff the claimDue claim is still ours (fenced like releaseClaim). */
  async #park(claim: RefreshClaim, parked: CredentialPatch): Promise<void> {
    await this.#tx("claimDue", async (c) => {
      if (holdsClaim(await this.#record(c, claim.ref, true), claim)) await this.#update(c, claim.ref, parked);
    });
  }

  async appendEvents(events: NewEvent[]): Promise<void> {
    // One transaction: all or none (and so safe to run again after a deadlock abort).
    if (events.length > 0) await this.#tx("appendEvents", (c) => this.#insertEvents(c, events));
  }

  async listEvents(
    connectionId: string,
    options: { limit: number; beforeId?: number },
  ): Promise<StoredEvent[]> {
    const limit = checkLimit(options.limit, "limit");
    const { rows } = await this.#query("listEvents", (c) =>
      c.query(
        `SELECT * FROM ${this.#t.events} WHERE connection_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
        [connectionId, options.beforeId ?? Number.MAX_SAFE_INTEGER, limit],
      ),
    );
    return rows.map(eventFromRow);
  }

  async getProviderState(provider: string): Promise<ProviderState | null> {
    const { rows } = await this.#query("getProviderState", (c) =>
      c.query(`SELECT * FROM ${this.#t.providerStates} WHERE provider = $1`, [provider]),
    );
    return rows[0] === undefined ? null : providerStateFromRow(rows[0]);
  }

  async pauseProvider(pause: ProviderPause, options: { replaceEndingAfterMs?: number } = {}): Promise<void> {
    checkPause(pause);
    const replaceAfterMs = options.replaceEndingAfterMs ?? Number.MAX_SAFE_INTEGER;
    checkInstant(replaceAfterMs, "replaceEndingAfterMs");
    await this.#query("pauseProvider", (c) =>
      c.query(
        `INSERT INTO ${this.#t.providerPauses} AS p (provider, until_ms, error) VALUES ($1, $2, $3)
         ON CONFLICT (provider) DO UPDATE SET until_ms = EXCLUDED.until_ms, error = EXCLUDED.error
         WHERE EXCLUDED.until_ms > p.until_ms OR p.until_ms > $4`,
        [pause.provider, pause.untilMs, pause.error, replaceAfterMs],
      ),
    );
  }

  async getProviderPause(provider: string): Promise<ProviderPause | null> {
    const { rows } = await this.#query("getProviderPause", (c) =>
      c.query(`SELECT * FROM ${this.#t.providerPauses} WHERE provider = $1`, [provider]),
    );
    return rows[0] === undefined ? null : providerPauseFromRow(rows[0]);
  }

  async setProviderState(
    state: ProviderState,
    options: { keepIfReportedAfterMs?: number } = {},
  ): Promise<boolean> {
    const t = this.#t.providerStates;
    return this.#tx("setProviderState", async (c) => {
      // A row to lock first: FOR UPDATE locks nothing while there is none, and concurrent first
      // refusals would each read "ok" and each report a change (a webhook each).
      await c.query(
        `INSERT INTO ${t} (provider, status, since_ms) VALUES ($1, 'ok', $2) ON CONFLICT (provider) DO NOTHING`,
        [state.provider, state.sinceMs],
      );
      const { rows } = await c.query<Row>(`SELECT * FROM ${t} WHERE provider = $1 FOR UPDATE`, [
        state.provider,
      ]);
      const written = providerStateOver(rows[0], state, options.keepIfReportedAfterMs);
      // since_ms is when the current status began: an unchanged status keeps it.
      await c.query(
        `INSERT INTO ${t} AS p (provider, status, reason, last_error, since_ms, client_fingerprint, asserted_at_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (provider) DO UPDATE SET reason = excluded.reason, last_error = excluded.last_error,
           since_ms = CASE WHEN p.status = excluded.status
             AND p.client_fingerprint IS NOT DISTINCT FROM excluded.client_fingerprint
             THEN p.since_ms ELSE excluded.since_ms END,
           status = excluded.status, client_fingerprint = excluded.client_fingerprint,
           asserted_at_ms = excluded.asserted_at_ms`,
        providerStateValues(written),
      );
      // A provider never seen is implicitly ok.
      const before = rows[0] === undefined ? null : providerStateFromRow(rows[0]);
      if (this.#outbox) await this.#insertOutbox(c, outboxRowOfProviderState(state, before, randomUUID()));
      return (before?.status ?? "ok") !== state.status;
    });
  }

  async liftProviderFlag(
    provider: string,
    lift: { clientFingerprint: string | null; nowMs: number; staleBeforeMs?: number },
  ): Promise<boolean> {
    const whose =
      lift.staleBeforeMs === undefined
        ? "($2::text IS NULL OR client_fingerprint IS NULL OR client_fingerprint = $2)"
        : "client_fingerprint <> $2 AND asserted_at_ms < $4";
    const t = this.#t.providerStates;
    return this.#tx("liftProviderFlag", async (c) => {
      // Locked first: of concurrent lifts one finds the flag, the others wait and find it lifted.
      const flag = await c.query<Row>(
        `SELECT since_ms FROM ${t} WHERE provider = $1 AND status = 'misconfigured' FOR UPDATE`,
        [provider],
      );
      const raised = flag.rows[0];
      if (raised === undefined) return false;
      const r = await c.query(
        `UPDATE ${t} SET status = 'ok', reason = NULL, last_error = NULL, since_ms = $3,
           client_fingerprint = $2, asserted_at_ms = NULL
         WHERE provider = $1 AND status = 'misconfigured' AND ${whose}`,
        [
          provider,
          lift.clientFingerprint,
          lift.nowMs,
          ...(lift.staleBeforeMs === undefined ? [] : [lift.staleBeforeMs]),
        ],
      );
      const lifted = (r.rowCount ?? 0) > 0;
      if (lifted && this.#outbox) {
        await this.#insertOutbox(
          c,
          outboxRowOfProviderLift(provider, Number(raised["since_ms"]), lift.nowMs, randomUUID()),
        );
      }
      return lifted;
    });
  }

  async reassertProviderFlag(
    provider: string,
    clientFingerprint: string,
    nowMs: number,
    before: { ownBeforeMs: number; othersBeforeMs: number },
  ): Promise<boolean> {
    const r = await this.#query("reassertProviderFlag", (c) =>
      c.query(
        `UPDATE ${this.#t.providerStates} SET asserted_at_ms = $3, client_fingerprint = $2
         WHERE provider = $1 AND status = 'misconfigured' AND client_fingerprint IS NOT NULL
           AND (asserted_at_ms IS NULL
             OR asserted_at_ms < CASE WHEN client_fingerprint = $2 THEN $4::bigint ELSE $5::bigint END)`,
        [provider, clientFingerprint, nowMs, before.ownBeforeMs, before.othersBeforeMs],
      ),
    );
    return (r.rowCount ?? 0) > 0;
  }

  async checkKeyRing(): Promise<void> {
    const t = this.#t;
    const prefixes = this.#sealer.keyIds.map(sealedPrefix);
    // A full scan only when no row matches, which is the case it refuses; otherwise the first hit.
    const { rows } = await this.#query("checkKeyRing", (c) =>
      c.query<{ sample: string | null; held: boolean }>(
        `SELECT (SELECT access_token_sealed FROM ${t.credentials} LIMIT 1) AS sample,
                EXISTS (SELECT 1 FROM ${t.credentials}
                         WHERE access_token_sealed ^@ ANY ($1::text[])) AS held`,
        [prefixes],
      ),
    );
    checkRingHolds(rows[0]?.sample ?? null, rows[0]?.held === true);
    await checkRingKeys(this.#sealer, {
      setting: async (key) => {
        const { rows } = await this.#query("checkKeyRing", (c) =>
          c.query<{ value: string }>(`SELECT value FROM ${t.settings} WHERE key = $1`, [key]),
        );
        return rows[0]?.value ?? null;
      },
      sealedWith: async (keyId) => {
        const { rows } = await this.#query("checkKeyRing", (c) =>
          c.query<SampledRow>(
            `SELECT connection_id, kind, access_token_sealed AS access, refresh_token_sealed AS refresh
             FROM ${t.credentials} WHERE access_token_sealed ^@ $1 OR refresh_token_sealed ^@ $1 LIMIT 3`,
            [sealedPrefix(keyId)],
          ),
        );
        return samplesUnder(keyId, rows);
      },
      putSettingIfAbsent: async (key, value) => (await this.putSettingIfAbsent(key, value)).value,
      // The database's clock, as every instant instances compare: hosts' clocks may disagree.
      nowMs: async () => {
        const { rows } = await this.#query("checkKeyRing", (c) =>
          c.query<{ now_ms: string }>("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000) AS now_ms"),
        );
        return Number(rows[0]?.now_ms);
      },
    });
  }

  async resealBatch(limit: number, after: CredentialRef | null = null): Promise<ResealBatch> {
    checkLimit(limit, "limit");
    const prefix = sealedPrefix(this.#sealer.currentKeyId);
    return this.#tx("resealBatch", async (c) => {
      // Before any value moves: from now on an instance starting with an older key first is refused.
      let marks: Array<{ key: string; value: string }> = [];
      if (after === null) {
        const { rows } = await c.query<{ key: string; value: string }>(
          `SELECT key, value FROM ${this.#t.settings} WHERE key = ANY ($1::text[])`,
          [this.#sealer.keyIds.map(keyFirstSeenSetting)],
        );
        marks = rotatedAwayMarks(this.#sealer, firstSeenTimes(rows));
      }
      if (marks.length > 0) {
        await c.query(
          `INSERT INTO ${this.#t.settings} AS s (key, value)
           SELECT unnest($1::text[]), $2
           ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE s.value <> excluded.value`,
          [marks.map((m) => m.key), this.#sealer.currentKeyId],
        );
      }
      // Row locks (in key order) keep a concurrent refresh from interleaving; substr, not LIKE,
      // because `_` in a key id is a LIKE wildcard. From `after` on, so a row left as it is
      // (unreadable) is passed over, not read again by every later batch.
      const stale = await this.#records(
        c,
        `WHERE (substr(access_token_sealed, 1, $1::int) <> $2
                OR (refresh_token_sealed IS NOT NULL AND substr(refresh_token_sealed, 1, $1::int) <> $2))
           AND ($4::text IS NULL OR (connection_id, kind) > ($4::text, $5::text))
         ORDER BY connection_id, kind LIMIT $3 FOR UPDATE`,
        [prefix.length, prefix, limit, after?.connectionId ?? null, after?.kind ?? null],
      );
      const { batch, patches } = resealRows(this.#sealer, stale, limit);
      // Same plaintext, so the version stays and no cache needs to notice.
      for (const { ref, patch } of patches) await this.#update(c, ref, patch);
      return batch;
    });
  }

  async claimOutbox(options: {
    owner: string;
    nowMs: number;
    leaseMs: number;
    limit: number;
  }): Promise<OutboxMessage[]> {
    const limit = checkLimit(options.limit, "limit");
    const t = this.#t.outbox;
    // One statement, as claimDue: due rows through the partial index; rows another instance is
    // leasing right now are skipped, not waited for.
    const { rows } = await this.#query("claimOutbox", (c) =>
      c.query(
        `WITH due AS (
           SELECT id FROM ${t}
           WHERE next_attempt_at_ms <= $1 AND (lease_until_ms IS NULL OR lease_until_ms <= $1)
           ORDER BY next_attempt_at_ms, created_at_ms
           LIMIT $2
           FOR UPDATE SKIP LOCKED
         )
         UPDATE ${t} AS o SET lease_owner = $3, lease_until_ms = $1::bigint + $4::bigint
         FROM due WHERE o.id = due.id
         RETURNING o.*`,
        [options.nowMs, limit, options.owner, options.leaseMs],
      ),
    );
    rows.sort(
      (a, b) =>
        Number(a["next_attempt_at_ms"]) - Number(b["next_attempt_at_ms"]) ||
        Number(a["created_at_ms"]) - Number(b["created_at_ms"]),
    );
    return rows.map(outboxMessageFromRow);
  }

  async completeOutbox(id: string, owner: string, nowMs: number): Promise<boolean> {
    const r = await this.#query("completeOutbox", (c) =>
      c.query(
        `UPDATE ${this.#t.outbox} SET delivered_at_ms = $1, next_attempt_at_ms = NULL, attempts = attempts + 1,
           lease_owner = NULL, lease_until_ms = NULL, last_error = NULL
         WHERE id = $2 AND lease_owner = $3 AND delivered_at_ms IS NULL`,
        [nowMs, id, owner],
      ),
    );
    return r.rowCount === 1;
  }

  async pruneEvents(beforeMs: number, limit: number): Promise<number> {
    const n = checkLimit(limit, "limit");
    const t = this.#t.events;
    // One statement, so safe to run again when PostgreSQL aborts it to break a deadlock (a connection
    // deleted meanwhile locks its events in another order).
    const r = await this.#retryingAborted(() =>
      this.#query("pruneEvents", (c) =>
        c.query(
          // ANY(ARRAY(…)): one plan (the oldest ids by the primary key, then deleted by id) whatever the
          // plan cache decides; IN (…) may become a hash join over the whole table under a generic plan.
          `DELETE FROM ${t} WHERE id = ANY(ARRAY(
             SELECT id FROM (SELECT id, at_ms FROM ${t} ORDER BY id LIMIT $2) oldest WHERE at_ms < $1))`,
          [beforeMs, n],
        ),
      ),
    );
    return r.rowCount ?? 0;
  }

  async pruneOutbox(beforeMs: number, limit: number): Promise<number> {
    const n = checkLimit(limit, "limit");
    const t = this.#t.outbox;
    // One statement, run again when PostgreSQL aborts it to break a deadlock (two instances pruning,
    // or a delivery marking rows, lock them in other orders).
    const r = await this.#retryingAborted(() =>
      this.#query("pruneOutbox", (c) =>
        c.query(
          `DELETE FROM ${t} WHERE id IN (
           SELECT id FROM ${t} WHERE delivered_at_ms IS NOT NULL AND delivered_at_ms < $1
           UNION ALL
           SELECT id FROM ${t} WHERE abandoned_at_ms IS NOT NULL AND abandoned_at_ms < $1
           LIMIT $2)`,
          [beforeMs, n],
        ),
      ),
    );
    return r.rowCount ?? 0;
  }

  async abandonOutbox(id: string, owner: string, nowMs: number, lastError: string): Promise<boolean> {
    const r = await this.#query("abandonOutbox", (c) =>
      c.query(
        `UPDATE ${this.#t.outbox} SET next_attempt_at_ms = NULL, attempts = attempts + 1, last_error = $1,
           lease_owner = NULL, lease_until_ms = NULL, abandoned_at_ms = $2
         WHERE id = $3 AND lease_owner = $4 AND delivered_at_ms IS NULL`,
        [lastError.slice(0, 500), nowMs, id, owner],
      ),
    );
    return r.rowCount === 1;
  }

  async retryOutbox(id: string, owner: string, nextAttemptAtMs: number, lastError: string): Promise<boolean> {
    const r = await this.#query("retryOutbox", (c) =>
      c.query(
        `UPDATE ${this.#t.outbox} SET next_attempt_at_ms = $1, attempts = attempts + 1, last_error = $2,
           lease_owner = NULL, lease_until_ms = NULL
         WHERE id = $3 AND lease_owner = $4 AND delivered_at_ms IS NULL`,
        [nextAttemptAtMs, lastError.slice(0, 500), id, owner],
      ),
    );
    return r.rowCount === 1;
  }

  async markOnce(scope: string, key: string, nowMs: number, expiresAtMs: number): Promise<boolean> {
    checkMark(scope, key);
    const t = this.#t.onceMarks;
    return this.#tx("markOnce", async (c) => {
      // Expired marks go first (through their index), so a lapsed mark never blocks and the table stays small.
      await c.query(`DELETE FROM ${t} WHERE expires_at_ms <= $1`, [nowMs]);
      const r = await c.query(
        `INSERT INTO ${t} (scope, key, expires_at_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
        [scope, key, expiresAtMs],
      );
      return r.rowCount === 1;
    });
  }

  async hasMark(scope: string, key: string, nowMs: number): Promise<boolean> {
    checkMark(scope, key);
    const r = await this.#query("hasMark", (c) =>
      c.query(`SELECT 1 FROM ${this.#t.onceMarks} WHERE scope = $1 AND key = $2 AND expires_at_ms > $3`, [
        scope,
        key,
        nowMs,
      ]),
    );
    return r.rowCount === 1;
  }

  async unmarkOnce(scope: string, key: string, expiresAtMs?: number): Promise<void> {
    await this.#query("unmarkOnce", (c) =>
      c.query(
        `DELETE FROM ${this.#t.onceMarks} WHERE scope = $1 AND key = $2 AND ($3::bigint IS NULL OR expires_at_ms = $3)`,
        [scope, key, expiresAtMs ?? null],
      ),
    );
  }

  async extendMark(
    scope: string,
    key: string,
    fromExpiresAtMs: number,
    toExpiresAtMs: number,
  ): Promise<boolean> {
    checkMark(scope, key);
    const r = await this.#query("extendMark", (c) =>
      c.query(
        `UPDATE ${this.#t.onceMarks} SET expires_at_ms = $1 WHERE scope = $2 AND key = $3 AND expires_at_ms = $4`,
        [toExpiresAtMs, scope, key, fromExpiresAtMs],
      ),
    );
    return r.rowCount === 1;
  }

  async putSettingIfAbsent(key: string, value: string): Promise<{ value: string; inserted: boolean }> {
    const t = this.#t.settings;
    return this.#tx("putSettingIfAbsent", async (c) => {
      const r = await c.query(`INSERT INTO ${t} (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
        key,
        value,
      ]);
      const { rows } = await c.query<{ value: string }>(`SELECT value FROM ${t} WHERE key = $1`, [key]);
      return { value: rows[0]?.value ?? value, inserted: r.rowCount === 1 };
    });
  }

  async clockOffsetMs(): Promise<number | null> {
    return this.#query("clockOffsetMs", async (c) => {
      // The database's clock is read mid-way through the round trip, as near as this side can tell, so
      // a sample is wrong by up to half its round trip: an answer handled late (a busy event loop, a GC
      // pause, a pooler's queue) would read as an offset. The quickest of up to three samples, taken
      // alone on one connection (not timing the wait for it), and none at all past OFFSET_MAX_RTT_MS.
      let best: { offsetMs: number; rttMs: number } | null = null;
      for (let i = 0; i < 3 && (best === null || best.rttMs > OFFSET_GOOD_RTT_MS); i++) {
        const sentAt = Date.now();
        const { rows } = await c.query<{ now_ms: number }>(
          "SELECT extract(epoch FROM clock_timestamp()) * 1000 AS now_ms",
        );
        const answeredAt = Date.now();
        const sample = {
          offsetMs: Number(rows[0]?.now_ms) - (sentAt + answeredAt) / 2,
          rttMs: answeredAt - sentAt,
        };
        if (best === null || sample.rttMs < best.rttMs) best = sample;
      }
      return best === null || best.rttMs > OFFSET_MAX_RTT_MS ? null : best.offsetMs;
    });
  }

  async putSetting(key: string, value: string): Promise<void> {
    await this.#query("putSetting", (c) =>
      c.query(
        `INSERT INTO ${this.#t.settings} (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [key, value],
      ),
    );
  }

  async countConnectionsByStatus(): Promise<Record<Status, number>> {
    const { rows } = await this.#query("countConnectionsByStatus", (c) =>
      c.query<{ status: Status; n: string }>(
        `SELECT status, count(*) AS n FROM ${this.#t.connections} GROUP BY status`,
      ),
    );
    const counts: Record<Status, number> = { active: 0, refresh_failing: 0, needs_reauth: 0 };
    for (const r of rows) counts[r.status] = Number(r.n);
    return counts;
  }

  async endOutageBackoffs(provider: string, nowMs: number, inDoubtDelayMs: number): Promise<number> {
    // Through migration 0011's partial index of failing credentials. A row claimed meanwhile is
    // skipped, not waited for: its holder's outcome is about to replace the backoff anyway.
    // Announced like any change to a credential: a process serving a backed-off token from memory
    // (getToken defers its refresh until the backoff's end) hears that it may send it now.
    const at = "CASE WHEN refresh_in_doubt THEN $3::bigint ELSE $2::bigint END";
    const moved = await this.#tx("endOutageBackoffs", async (c) => {
      const { rows } = await c.query<{ connection_id: string; kind: CredentialKind }>(
        `UPDATE ${this.#t.credentials} AS c SET next_run_at_ms = ${at}, next_attempt_at_ms = ${at}
         WHERE c.ctid = ANY(ARRAY(
           SELECT ctid FROM ${this.#t.credentials}
           WHERE provider = $1 AND status = 'refresh_failing' AND reason = 'provider_unavailable'
             AND next_run_at_ms = next_attempt_at_ms AND next_run_at_ms > ${at}
             AND refresh_token_sealed IS NOT NULL
             AND (claim_until_ms IS NULL OR claim_until_ms <= $2)
           FOR UPDATE SKIP LOCKED))
         RETURNING c.connection_id, c.kind`,
        [provider, nowMs, nowMs + inDoubtDelayMs],
      );
      const refs = rows.map((r) => ({ connectionId: r.connection_id, kind: r.kind }));
      await this.#notify(c, refs);
      return refs;
    });
    this.#bumpLocal(moved);
    return moved.length;
  }

  async refreshBacklog(provider: string, nowMs: number, cap: number): Promise<RefreshBacklog> {
    const { rows } = await this.#query("refreshBacklog", (c) =>
      c.query<{ due: number; oldest: string | null }>(
        // A credential the provider keeps failing is backed off past now, yet still due and not
        // done: it counts from when it first fell due (the second half, migration 0011's index).
        `SELECT count(*)::int AS due, min(since) AS oldest FROM (
           (SELECT CASE WHEN status = 'refresh_failing' AND refresh_due_at_ms < next_run_at_ms
                     THEN refresh_due_at_ms ELSE next_run_at_ms END AS since
            FROM ${this.#t.credentials}
            WHERE provider = $1 AND next_run_at_ms <= $2 AND status <> 'needs_reauth'
              AND refresh_token_sealed IS NOT NULL
            ORDER BY next_run_at_ms LIMIT $3)
           UNION ALL
           (SELECT refresh_due_at_ms FROM ${this.#t.credentials}
            WHERE provider = $1 AND status = 'refresh_failing' AND refresh_due_at_ms <= $2
              AND next_run_at_ms > $2 AND next_run_at_ms = next_attempt_at_ms
             AND refresh_token_sealed IS NOT NULL
            ORDER BY refresh_due_at_ms LIMIT $3)
           ORDER BY since LIMIT $3) AS due`,
        [provider, nowMs, cap],
      ),
    );
    const row = rows[0];
    return { due: row?.due ?? 0, oldestDueAtMs: row?.oldest == null ? null : Number(row.oldest) };
  }

  changeStamp(ref: CredentialRef): number {
    return this.#listener.stamp(refKey(ref));
  }

  hearsChanges(): boolean {
    return !this.#listener.deaf;
  }

  /** Locks the connection row first (see the lock order above); its status, or null when absent. */
  async #lockConnection(c: Client, id: string): Promise<Status | null> {
    const { rows } = await c.query<{ status: Status }>(
      `SELECT status FROM ${this.#t.connections} WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0]?.status ?? null;
  }

  async #record(c: Client, ref: CredentialRef, lock: boolean): Promise<CredentialRecord | null> {
    const records = await this.#records(
      c,
      `WHERE connection_id = $1 AND kind = $2${lock ? " FOR UPDATE" : ""}`,
      [ref.connectionId, ref.kind],
    );
    return records[0] ?? null;
  }

  async #records(c: Client, clause: string, params: unknown[]): Promise<CredentialRecord[]> {
    const { rows } = await c.query(`SELECT * FROM ${this.#t.credentials} ${clause}`, params);
    return rows.map(recordFromRow);
  }

  async #update(c: Client, ref: CredentialRef, patch: CredentialPatch): Promise<void> {
    const columns = credentialColumns(patch, (b) => b);
    await c.query(
      `UPDATE ${this.#t.credentials} SET ${columns.map(([col], i) => `${col} = $${i + 3}`).join(", ")}
       WHERE connection_id = $1 AND kind = $2`,
      [ref.connectionId, ref.kind, ...columns.map(([, v]) => v)],
    );
  }

  async #insertCredential(c: Client, record: CredentialRecord): Promise<void> {
    const columns = credentialColumns(record, (b) => b);
    await c.query(
      `INSERT INTO ${this.#t.credentials} (${columns.map(([col]) => col).join(", ")})
       VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`,
      columns.map(([, v]) => v),
    );
  }

  /** Rewrites the connection's status as the worst of its credentials' (same transaction, row already locked). */
  async #rollUp(
    c: Client,
    connectionId: string,
    before: Status,
    nowMs: number,
    events: NewEvent[],
  ): Promise<StatusChange> {
    const records = await this.#records(c, "WHERE connection_id = $1", [connectionId]);
    const worst = rollUpStatus(records.sort(byKind));
    await c.query(
      `UPDATE ${this.#t.connections} SET status = $2, reason = $3, updated_at_ms = $4 WHERE id = $1`,
      [connectionId, worst.status, worst.reason, nowMs],
    );
    // Recorded here, in the caller's transaction, with the episode's own event (see the SQLite twin).
    const change = { before, after: worst.status, reason: worst.reason };
    await this.#insertEvents(c, [...events, ...episodeEvents(connectionId, change, nowMs, events)]);
    return change;
  }

  async #insertEvents(c: Client, events: NewEvent[]): Promise<void> {
    for (const e of events) {
      await c.query(
        `INSERT INTO ${this.#t.events} (connection_id, kind, type, reason, at_ms, data) VALUES ($1, $2, $3, $4, $5, $6)`,
        [e.connectionId, e.kind, e.type, e.reason ?? null, e.atMs, JSON.stringify(e.data ?? {})],
      );
      if (this.#outbox) {
        const { rows } = await c.query<{ provider: string }>(
          `SELECT provider FROM ${this.#t.connections} WHERE id = $1`,
          [e.connectionId],
        );
        const provider = rows[0]?.provider;
        if (provider !== undefined) await this.#insertOutbox(c, outboxRowOfEvent(e, provider, randomUUID()));
      }
    }
  }

  async #insertOutbox(c: Client, row: NewOutboxRow | null): Promise<void> {
    if (row === null) return;
    const m = row.message;
    await c.query(
      `INSERT INTO ${this.#t.outbox} (id, type, payload, created_at_ms, attempts, next_attempt_at_ms)
       VALUES ($1, $2, $3, $4, 0, $5)`,
      [m.id, m.type, JSON.stringify(m.payload), m.createdAtMs, row.nextAttemptAtMs],
    );
  }

  /** Delivered to every listener when (and only if) the transaction commits. */
  async #notify(c: Client, refs: CredentialRef[]): Promise<void> {
    if (refs.length > 0) await c.query("SELECT pg_notify($1, $2)", [this.#channel, notifyPayload(refs)]);
  }

  /** Our own commits move our stamps at once, without waiting for the notification's echo. */
  #bumpLocal(refs: CredentialRef[]): void {
    for (const ref of refs) this.#listener.bump(refKey(ref));
  }

  /**
   * `begin` defaults to READ COMMITTED, right for writes that lock what they read; reads of
   * several tables use a REPEATABLE READ snapshot so a connection and its credentials agree.
   */
  async #tx<T>(operation: string, fn: (c: Client) => Promise<T>, begin = "BEGIN"): Promise<T> {
    return this.#retryingAborted(() =>
      this.#query(operation, async (c) => {
        await c.query(begin);
        try {
          const result = await fn(c);
          await c.query("COMMIT");
          return result;
        } catch (error) {
          await c.query("ROLLBACK").catch(() => {});
          throw error;
        }
      }),
    );
  }

  /**
   * Runs `run` again, after a short random pause, up to DEADLOCK_RETRIES times, when PostgreSQL aborted
   * it to break a deadlock (40P01) or a serialization conflict (40001): rows locked in different orders
   * by two statements (a batch completion's plan, a key-rotation batch) cost a retry, not an error.
   * Only for what such an abort undoes entirely: one transaction (#tx) or one statement; several
   * autocommit statements would be half done, and run again in full.
   */
  async #retryingAborted<T>(run: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await run();
      } catch (error) {
        if (attempt >= DEADLOCK_RETRIES || !abortedToBreakAConflict(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 45));
      }
    }
  }

  /**
   * A pooled connection, or store_unavailable once close() began: pg-pool never answers the requests
   * still queued for a connection when it ends, so without this a call waiting behind a busy pool at
   * close() would stay pending forever (and a graceful shutdown awaiting it would hang).
   */
  #connect(operation: string, pool: pg.Pool): Promise<Client> {
    const closed = () =>
      new TokenwardenError("store_unavailable", `PostgreSQL ${operation} failed: the store is closed`);
    if (this.#closed) return Promise.reject(closed());
    return new Promise((resolve, reject) => {
      const fail = () => reject(closed());
      this.#waitingForConnection.add(fail);
      pool.connect().then(
        (client) => {
          this.#waitingForConnection.delete(fail);
          // A borrowed pool outlives close() and may still serve a request made before it.
          if (this.#closed) {
            client.release();
            fail();
          } else resolve(client);
        },
        (error: unknown) => {
          this.#waitingForConnection.delete(fail);
          reject(error);
        },
      );
    });
  }

  async #query<T>(operation: string, fn: (c: Client) => Promise<T>, pool = this.#pool): Promise<T> {
    let client: Client;
    try {
      client = await this.#connect(operation, pool);
    } catch (error) {
      throw translatePgError(operation, error);
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (error) {
      // A connection-level failure leaves the client unusable: destroy it rather than return it to the pool.
      if (
        !(error instanceof pg.DatabaseError) &&
        !(error instanceof TokenwardenError) &&
        error instanceof Error
      ) {
        broken = error;
      }
      throw translatePgError(operation, error);
    } finally {
      client.release(broken);
    }
  }
}

/** Runs of a statement or transaction PostgreSQL aborted for a deadlock or serialization conflict. */
const DEADLOCK_RETRIES = 3;

function abortedToBreakAConflict(error: unknown): boolean {
  const cause = error instanceof TokenwardenError ? error.cause : error;
  return cause instanceof pg.DatabaseError && (cause.code === "40P01" || cause.code === "40001");
}

function refKey(ref: CredentialRef): string {
  return `${ref.kind}:${ref.connectionId}`;
}

/** The keys of `refs` one per line (ids hold no newline), or "*" (everything) when they would not fit. */
function notifyPayload(refs: CredentialRef[]): string {
  const payload = refs.map(refKey).join("\n");
  return Buffer.byteLength(payload) > NOTIFY_PAYLOAD_LIMIT ? EVERYTHING : payload;
}

/** The claim the claimDue statement wrote on `r` (`previousAttemptLost` from the journal it saved). */
function dueClaimOf(r: CredentialRecord, owner: string): Omit<DueClaim, "credential"> {
  return {
    ref: refOf(r),
    owner,
    claimId: r.claimId ?? "",
    previousAttemptLost: r.claimPrevInDoubt ?? false,
  };
}

function refOf(record: CredentialRecord): CredentialRef {
  return { connectionId: record.connectionId, kind: record.kind };
}

/** A clock sample's round trip this short is taken at once (its error is at most half of it). */
const OFFSET_GOOD_RTT_MS = 50;
/** Past this round trip no sample is trusted (an error of up to half of it, above the 1 s applied). */
const OFFSET_MAX_RTT_MS = 1_000;

/** A signed 64-bit advisory lock key derived from a name. */
function advisoryKey(name: string): string {
  return createHash("sha256").update(name).digest().readBigInt64BE(0).toString();
}

/**
 * The indexes of `refs` sorted by (connection id, kind), the order `resealBatch` locks rows in
 * (connection ids are COLLATE "C", byte order; UTF-16 order agrees for every id without characters
 * beyond U+FFFF, and where it does not, the cost is the deadlock retry this avoids, not a wrong answer).
 */
function keyOrder(refs: readonly CredentialRef[]): number[] {
  const order = refs.map((_, n) => n);
  return order.sort((x, y) => {
    const a = refs[x] as CredentialRef;
    const b = refs[y] as CredentialRef;
    if (a.connectionId !== b.connectionId) return a.connectionId < b.connectionId ? -1 : 1;
    return a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0;
  });
}

/** A timeout option, checked as the engine's timings are, or `config_invalid` naming it. */
function wholeMs(value: number, name: string): number {
  if (!isTimingMs(value)) {
    throw new TokenwardenError(
      "config_invalid",
      `PostgresStore ${name} must be a whole number of milliseconds from 1 to ${MAX_TIMING_MS} (a day)`,
    );
  }
  return value;
}

/** A pg Client class (`base`'s) whose connection attempt fails after `ms`, whatever its pool's settings. */
function clientConnectingWithin(ms: number, base: pg.PoolConfig["Client"] = pg.Client): typeof pg.Client {
  return class extends (base as typeof pg.Client) {
    constructor(config?: string | pg.ClientConfig) {
      super({
        ...(typeof config === "string" ? { connectionString: config } : config),
        connectionTimeoutMillis: ms,
      });
    }
  };
}
