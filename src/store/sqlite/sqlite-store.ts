import { randomUUID } from "node:crypto";
import { closeSync, openSync, statSync } from "node:fs";
import { resolve } from "node:path";
import Database from "better-sqlite3";
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
import { translateSqliteError } from "./sqlite-errors.js";

export interface SqliteStoreOptions {
  /** A file path; several processes on one machine may share it. `:memory:` works but shares nothing. */
  path: string;
  sealer: Sealer;
  /** How long a writer waits for another process's write transaction before `store_unavailable`. */
  busyTimeoutMs?: number;
  /** Write webhook rows to the outbox with the changes that cause them (the server sets it when webhooks are on). */
  outbox?: boolean;
}

/** How long the checkpoint that ends a key rotation may hold the write lock waiting for readers. */
const TRUNCATE_WAIT_MS = 200;

type Row = Record<string, unknown>;
type StatusRow = { status: Status };
type ConnectionRow = Row & { id: string };

/**
 * The rows claimDue takes: the same condition as isDue(), through the partial index on (provider,
 * next_run_at_ms), so only that provider's due rows are read (migration 0007).
 */
const DUE_CLAUSE = `WHERE provider = @provider AND next_run_at_ms <= @nowMs AND status <> 'needs_reauth'
  AND refresh_token_sealed IS NOT NULL`;
/**
 * endOutageBackoffs' rows: one provider's credentials backed off after an outage, through migration
 * 0011's partial index of failing credentials. Only a wait that is the backoff's (the run at its end):
 * one parked for an unreadable refresh token waits for its key, and would be opened and parked again.
 */
const OUTAGE_BACKOFF_CLAUSE = `WHERE provider = @provider AND status = 'refresh_failing'
  AND reason = 'provider_unavailable' AND next_run_at_ms = next_attempt_at_ms
  AND next_run_at_ms > (CASE WHEN refresh_in_doubt = 1 THEN @inDoubtAtMs ELSE @nowMs END)
  AND refresh_token_sealed IS NOT NULL
  AND (claim_until_ms IS NULL OR claim_until_ms <= @nowMs)`;
export const CLAIM_DUE_CLAUSE = `${DUE_CLAUSE} AND (claim_until_ms IS NULL OR claim_until_ms <= @leaseNowMs)
  ORDER BY next_run_at_ms LIMIT @limit`;

/**
 * findConnectionsByInstallation's rows, through the expression indexes of migration 0008 (SQLite uses
 * one only for the very expression it was built on: keep the two in step). A null parameter matches
 * nothing.
 */
export const BY_INSTALLATION_SQL = `SELECT id FROM connections
   WHERE provider = @provider AND json_extract(metadata, '$.team_id') = @teamId
  UNION
  SELECT id FROM connections
   WHERE provider = @provider AND json_extract(metadata, '$.enterprise_id') = @enterpriseId
     AND (json_extract(metadata, '$.team_id') IS NULL OR json_extract(metadata, '$.team_id') = @enterpriseId)
  ORDER BY id LIMIT @limit`;

/**
 * The embedded store: one SQLite file in WAL mode, shared by the processes of
 * one machine. better-sqlite3 is synchronous, so each method runs whole on the
 * event loop; every write is a `BEGIN IMMEDIATE` transaction, which takes the
 * database's write lock up front, so the read-decide-write of a claim cannot
 * interleave with another process's (DESIGN.md invariant 1).
 *
 * @example
 * const store = await SqliteStore.open({ path: "./tokenwarden.db", sealer });
 * await store.migrate();
 */
export class SqliteStore implements Store {
  readonly #db: Database.Database;
  /** The file opened, by identity: ping() tells a file deleted or replaced under the process. */
  readonly #file: { path: string; dev: number; ino: number } | null;
  readonly #sealer: Sealer;
  readonly #statements = new Map<string, Database.Statement>();
  readonly #dataVersion: Database.Statement;
  readonly #totalChanges: Database.Statement;
  readonly #outbox: boolean;
  #lastDataVersion = -1;
  #changes = 0;
  /** True from a read of data_version until `#staleTimer` fires: that read still stands. */
  #stampFresh = false;
  readonly #staleTimer: NodeJS.Timeout;

  private constructor(
    db: Database.Database,
    sealer: Sealer,
    outbox: boolean,
    file: { path: string; dev: number; ino: number } | null,
  ) {
    this.#db = db;
    this.#file = file;
    this.#sealer = sealer;
    this.#outbox = outbox;
    this.#dataVersion = db.prepare("PRAGMA data_version").pluck();
    this.#totalChanges = db.prepare("SELECT total_changes()").pluck();
    this.#staleTimer = setTimeout(() => {
      this.#stampFresh = false;
    }, 1);
    this.#staleTimer.unref();
  }

  static async open(options: SqliteStoreOptions): Promise<SqliteStore> {
    let db: Database.Database | undefined;
    try {
      // Tokens in it are encrypted, but nothing else on the machine has business reading it: a new
      // file is created owner-only (SQLite gives its -wal and -shm files the same mode).
      if (options.path !== ":memory:") closeSync(openSync(options.path, "a", 0o600));
      db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 5_000 });
      // WAL: readers never block the writer, and processes share the file safely.
      db.pragma("journal_mode = WAL");
      // FULL: a committed rotation survives a power cut; a lost rotated refresh token kills a connection.
      db.pragma("synchronous = FULL");
      db.pragma("foreign_keys = ON");
      // Freed space is zeroed where that costs no extra I/O: a re-sealed or replaced token's old
      // ciphertext does not linger in a page after the page is written.
      db.pragma("secure_delete = FAST");
      // Absolute, as SQLite made it at open: after a chdir the store still writes that file, and a
      // relative path would stat another one (or none) and fail a healthy store's ping.
      const path = options.path === ":memory:" ? null : resolve(options.path);
      const opened = path === null ? null : statSync(path);
      const file = path === null || opened === null ? null : { path, dev: opened.dev, ino: opened.ino };
      return new SqliteStore(db, options.sealer, options.outbox === true, file);
    } catch (error) {
      // A refused file (not a database, locked past busy_timeout) must not keep its handle: a caller
      // that retries its start would leak one per attempt.
      db?.close();
      throw translateSqliteError(`open ${options.path}`, error);
    }
  }

  async migrate(): Promise<string[]> {
    return this.#write("migrate", () => {
      this.#db.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT",
      );
      // Under BEGIN IMMEDIATE: a second process waits here, then sees every version applied.
      const applied = new Set(this.#db.prepare("SELECT version FROM schema_migrations").pluck().all());
      const now: string[] = [];
      for (const migration of loadMigrations("sqlite")) {
        if (applied.has(migration.version)) continue;
        this.#db.exec(migration.sql);
        this.#db
          .prepare("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
          .run(migration.version, migration.name);
        now.push(migration.file);
      }
      return now;
    });
  }

  async newerMigrations(): Promise<string[]> {
    return this.#read("newerMigrations", () =>
      newerThan(
        loadMigrations("sqlite"),
        this.#all<{ version: number; name: string }>("SELECT version, name FROM schema_migrations"),
      ),
    );
  }

  async close(): Promise<void> {
    clearTimeout(this.#staleTimer);
    this.#stampFresh = false; // the next changeStamp sees the closed database
    if (this.#db.open) this.#db.close();
  }

  async ping(): Promise<void> {
    this.#run("ping", () => this.#db.prepare("SELECT 1").get());
    // SELECT 1 answers from an open handle even after the file was deleted (an operator "resetting"
    // it) or replaced (a restore): this process would go on writing rotated tokens to a file no other
    // process sees, and lose them at restart. /healthz must say so.
    if (this.#file === null) return;
    const now = statSync(this.#file.path, { throwIfNoEntry: false });
    if (now === undefined || now.dev !== this.#file.dev || now.ino !== this.#file.ino) {
      throw new TokenwardenError(
        "store_unavailable",
        `SQLite ping: the database file ${this.#file.path} was ${now === undefined ? "deleted" : "replaced"} while this process had it open; what it writes goes to the old file, which no other process sees: restart it`,
      );
    }
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
    return this.#write("putConnection", () => {
      const old = this.#get<StatusRow & { metadata: string }>(
        "SELECT status, metadata FROM connections WHERE id = ?",
        input.id,
      );
      // Merged here, inside the write transaction, as PostgreSQL's `||` does: shallow, given keys win.
      // The given keys as JSON has them, as PostgreSQL receives them: one whose value JSON cannot
      // hold (undefined) is not given, and must not take the stored value away.
      const metadata =
        options.mergeMetadata && old !== undefined
          ? mergeMetadata(
              JSON.parse(old.metadata) as object,
              JSON.parse(JSON.stringify(input.metadata)) as Record<string, unknown>,
              false,
            )
          : input.metadata;
      const versions = new Map(
        this.#all<{ kind: CredentialKind; version: number }>(
          "SELECT kind, version FROM credentials WHERE connection_id = ?",
          input.id,
        ).map((r) => [r.kind, r.version]),
      );
      this.#stmt(
        `INSERT INTO connections (id, provider, status, reason, metadata, created_at_ms, updated_at_ms)
         VALUES (?, ?, 'active', NULL, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET provider = excluded.provider, metadata = excluded.metadata,
           updated_at_ms = excluded.updated_at_ms`,
      ).run(input.id, input.provider, JSON.stringify(metadata), nowMs, nowMs);
      this.#stmt("DELETE FROM credentials WHERE connection_id = ?").run(input.id);
      input.credentials.forEach((credential, i) => {
        const record = newCredentialRecord(
          input,
          credential,
          sealed[i] as (typeof sealed)[number],
          versionAfter(versions.get(credential.kind) ?? null),
          nowMs,
        );
        this.#insertCredential(record);
      });
      const change = this.#rollUp(input.id, nowMs, events);
      return {
        before: old?.status ?? null,
        after: change?.after ?? "active",
        reason: change?.reason ?? null,
      };
    });
  }

  async getConnection(id: string): Promise<Connection | null> {
    return this.#read("getConnection", () => {
      const row = this.#get("SELECT * FROM connections WHERE id = ?", id);
      if (row === undefined) return null;
      return connectionFromRow(row, this.#records("WHERE connection_id = ?", id));
    });
  }

  async listConnections(filter: ListFilter): Promise<{ items: Connection[]; nextCursor: string | null }> {
    const limit = checkLimit(filter.limit, "limit");
    const after = decodeCursor(filter.cursor);
    checkListFilter(filter);
    return this.#read("listConnections", () => {
      // NULL parameters switch a filter off, so one cached statement serves every combination.
      const rows = this.#all<ConnectionRow>(
        `SELECT * FROM connections
         WHERE (@provider IS NULL OR provider = @provider) AND (@status IS NULL OR status = @status)
           AND (@after IS NULL OR id > @after)
         ORDER BY id LIMIT @limit`,
        { provider: filter.provider ?? null, status: filter.status ?? null, after, limit: limit + 1 },
      );
      const page = rows.slice(0, limit);
      // One query for all credentials of the page, not one per connection.
      const ids = page.map((r) => r.id);
      const byConnection = groupByConnection(
        this.#records("WHERE connection_id IN (SELECT value FROM json_each(?))", JSON.stringify(ids)),
      );
      const last = page.at(-1);
      return {
        items: page.map((r) => connectionFromRow(r, byConnection.get(r.id) ?? [])),
        nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.id) : null,
      };
    });
  }

  async findConnectionsByInstallation(query: InstallationQuery): Promise<string[]> {
    const q = checkInstallationQuery(query);
    return this.#read("findConnectionsByInstallation", () =>
      this.#all<{ id: string }>(BY_INSTALLATION_SQL, q).map((r) => r.id),
    );
  }

  async deleteConnection(id: string): Promise<boolean> {
    return this.#write("deleteConnection", () => {
      this.#stmt("DELETE FROM events WHERE connection_id = ?").run(id);
      this.#stmt("DELETE FROM credentials WHERE connection_id = ?").run(id);
      return this.#stmt("DELETE FROM connections WHERE id = ?").run(id).changes > 0;
    });
  }

  async deleteCredential(
    ref: CredentialRef,
    nowMs: number,
    event: NewEvent,
    options: { ifVersion?: number } = {},
  ): Promise<CredentialDeletion> {
    return this.#write("deleteCredential", (): CredentialDeletion => {
      const records = this.#records("WHERE connection_id = ?", ref.connectionId);
      const refused = deletionRefused(records, ref.kind, options.ifVersion);
      if (refused !== null) return refused;
      this.#stmt("DELETE FROM credentials WHERE connection_id = ? AND kind = ?").run(
        ref.connectionId,
        ref.kind,
      );
      const change = this.#rollUp(ref.connectionId, nowMs, [event]);
      // The connection row is there: its credentials are (foreign key), and this is one transaction.
      if (change === null) throw new Error("a connection with credentials has no row");
      return { kind: "deleted", change };
    });
  }

  async updateMetadata(
    id: string,
    patch: Record<string, unknown>,
    nowMs: number,
    options: { onlyMissing?: boolean } = {},
  ): Promise<boolean> {
    checkJsonText(patch, "metadata");
    return this.#write("updateMetadata", () => {
      const row = this.#get<{ metadata: string }>("SELECT metadata FROM connections WHERE id = ?", id);
      if (row === undefined) return false;
      const merged = mergeMetadata(JSON.parse(row.metadata) as object, patch, options.onlyMissing);
      this.#stmt("UPDATE connections SET metadata = ?, updated_at_ms = ? WHERE id = ?").run(
        JSON.stringify(merged),
        nowMs,
        id,
      );
      return true;
    });
  }

  async learnProviderData(
    ref: CredentialRef,
    facts: Record<string, string>,
    ifVersion: number,
  ): Promise<boolean> {
    checkJsonText(facts, "provider data");
    return this.#write("learnProviderData", () => {
      const record = this.#record(ref);
      if (record === null || record.version !== ifVersion) return false;
      const providerData = learnedProviderData(record.providerData, facts);
      if (providerData === null) return false;
      this.#update(ref, { providerData });
      return true;
    });
  }

  async getCredential(ref: CredentialRef): Promise<StoredCredential | null> {
    const record = this.#read("getCredential", () => this.#record(ref));
    return record === null ? null : credentialFromRecord(record, this.#sealer);
  }

  async listCredentials(connectionId: string): Promise<StoredCredential[]> {
    const records = this.#read("listCredentials", () =>
      this.#records("WHERE connection_id = ?", connectionId),
    );
    return records.sort(byKind).map((r) => credentialFromRecord(r, this.#sealer));
  }

  async claimRefresh(ref: CredentialRef, options: ClaimOptions): Promise<ClaimResult> {
    return this.#write("claimRefresh", () => {
      const record = this.#record(ref);
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
      this.#update(ref, claimPatch(record, claim, options.nowMs, options.leaseMs, options.sends));
      return claimResultOf(decision, open, { claim, previousAttemptLost: record.refreshInDoubt });
    });
  }

  async renewClaim(claim: RefreshClaim, nowMs: number, leaseMs: number): Promise<boolean> {
    return this.#write("renewClaim", () => {
      if (!holdsClaim(this.#record(claim.ref), claim)) return false;
      this.#update(claim.ref, renewPatch(nowMs, leaseMs));
      return true;
    });
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
    // One transaction for the batch: one fsync (synchronous=FULL) for many rotations, which is what
    // bounds a refresh storm on SQLite. Each item is still fenced on its own claim. Should any item
    // throw, the whole transaction rolls back and the call rejects: none is stored, all may retry.
    return this.#write("completeRefresh", () =>
      items.map(({ claim, result, nowMs, event }, i): CompletionOutcome => {
        const tokens = sealed[i] as SealedTokens;
        if (this.#completeActive(claim, tokens, result, nowMs)) {
          this.#insertEvents([event]);
          return STORED_NO_CHANGE;
        }
        const record = this.#record(claim.ref);
        if (!holdsClaim(record, claim)) return FENCED;
        this.#update(claim.ref, completionPatch(record, tokens, result, nowMs));
        return { kind: "stored", change: this.#rollUp(claim.ref.connectionId, nowMs, [event]) };
      }),
    );
  }

  /**
   * The common case in one statement, as on PostgreSQL: the credential was `active` under this claim
   * and stays so, hence the connection's rolled-up status cannot change. The SET list is
   * completionPatch() in SQL. json_patch() merges like the spread in completionPatch() only for flat,
   * non-null values; any other provider data takes the general path.
   */
  #completeActive(claim: RefreshClaim, sealed: SealedTokens, result: RefreshResult, nowMs: number): boolean {
    if (!Object.values(result.providerData).every((v) => v !== null && typeof v !== "object")) return false;
    return (
      this.#stmt(
        `UPDATE credentials SET
           claim_id = NULL, claim_owner = NULL, claim_until_ms = NULL, claim_prev_in_doubt = NULL,
           claim_prev_run_at_ms = NULL, access_token_sealed = @access,
           refresh_token_sealed = COALESCE(@refresh, refresh_token_sealed), token_type = @tokenType,
           scopes = @scopes, expires_at_ms = @expiresAtMs, issued_at_ms = @nowMs, refreshed_at_ms = @nowMs,
           version = version + 1, status = 'active', reason = NULL, last_error = NULL, failure_count = 0,
           next_attempt_at_ms = NULL, refresh_in_doubt = 0,
           provider_data = json_patch(provider_data, @providerData),
           refresh_due_at_ms = @dueMs, next_run_at_ms = @dueMs
         WHERE connection_id = @connectionId AND kind = @kind AND claim_id = @claimId AND status = 'active'`,
      ).run({
        access: sealed.accessTokenSealed,
        refresh: sealed.refreshTokenSealed,
        tokenType: result.tokens.tokenType,
        scopes: JSON.stringify(result.tokens.scopes),
        expiresAtMs: result.tokens.expiresAtMs,
        nowMs,
        providerData: JSON.stringify(result.providerData),
        dueMs: result.refreshDueAtMs,
        connectionId: claim.ref.connectionId,
        kind: claim.ref.kind,
        claimId: claim.claimId,
      }).changes === 1
    );
  }

  async failRefresh(
    claim: RefreshClaim,
    failure: FailureRecord,
    nowMs: number,
    event: NewEvent,
  ): Promise<StatusChange | null> {
    return this.#write("failRefresh", () => {
      const record = this.#record(claim.ref);
      if (!holdsClaim(record, claim)) return null;
      this.#update(claim.ref, failurePatch(record, failure));
      const change = this.#rollUp(claim.ref.connectionId, nowMs, [event]);
      return change;
    });
  }

  async releaseClaim(claim: RefreshClaim): Promise<void> {
    this.#write("releaseClaim", () => {
      const record = this.#record(claim.ref);
      if (holdsClaim(record, claim)) this.#update(claim.ref, releasePatch(record));
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
    return this.#write("setCredentialStatus", () => {
      if (this.#get("SELECT 1 FROM connections WHERE id = ?", connectionId) === undefined) return null;
      const applying = this.#records("WHERE connection_id = ?", connectionId).filter((r) =>
        verdictApplies(r, kinds, ifVersions, status, ifIssuedBeforeMs),
      );
      if (applying.length === 0) return null;
      for (const record of applying) this.#update(record, statusPatch(record, status));
      const rolled = this.#rollUp(connectionId, nowMs, eventsOf(events, applying));
      return rolled === null ? null : { ...rolled, changed: applying.map((r) => r.kind) };
    });
  }

  async claimDue(options: ClaimDueOptions): Promise<DueClaim[]> {
    const limit = checkLimit(options.limit, "limit");
    const provider = checkProvider(options.provider);
    const unreadable: UnreadableCredential[] = [];
    const claims = this.#write("claimDue", () => {
      const due = this.#records(CLAIM_DUE_CLAUSE, {
        nowMs: options.nowMs,
        leaseNowMs: options.leaseNowMs ?? options.nowMs,
        provider,
        limit,
      });
      return due.flatMap((record) => this.#claimDueRecord(record, options, unreadable));
    });
    for (const u of unreadable) options.onUnreadable?.(u);
    return claims;
  }

  /**
   * Claims one due row, or parks it when its refresh token cannot be opened. Opened before anything is
   * written, and never thrown: a throw here would roll the whole batch back, and that row, first in due
   * order, would block every later pass.
   */
  #claimDueRecord(
    record: CredentialRecord,
    options: ClaimDueOptions,
    unreadable: UnreadableCredential[],
  ): DueClaim[] {
    const claim = {
      ref: { connectionId: record.connectionId, kind: record.kind },
      owner: options.owner,
      claimId: randomUUID(),
    };
    const patch = claimPatch(record, claim, options.leaseNowMs ?? options.nowMs, options.leaseMs);
    const claimed = { ...record, ...patch };
    const opening = openClaimedCredential(claimed, this.#sealer);
    if (opening.kind === "unreadable") {
      // Parked from the row as claimed, as on PostgreSQL (whose claim is committed before the open):
      // both stores leave the same row (a lapsed claim cleared, the journal as it was).
      const parked = parkPatch(claimed, options.nowMs);
      this.#update(record, parked);
      unreadable.push(unreadableCredential(record, opening, parked.nextRunAtMs));
      return [];
    }
    this.#update(record, patch);
    return [{ ...claim, previousAttemptLost: record.refreshInDoubt, credential: opening.credential }];
  }

  async appendEvents(events: NewEvent[]): Promise<void> {
    if (events.length > 0) this.#write("appendEvents", () => this.#insertEvents(events));
  }

  async listEvents(
    connectionId: string,
    options: { limit: number; beforeId?: number },
  ): Promise<StoredEvent[]> {
    const limit = checkLimit(options.limit, "limit");
    return this.#read("listEvents", () =>
      this.#all(
        "SELECT * FROM events WHERE connection_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
        connectionId,
        options.beforeId ?? Number.MAX_SAFE_INTEGER,
        limit,
      ).map(eventFromRow),
    );
  }

  async getProviderState(provider: string): Promise<ProviderState | null> {
    const row = this.#read("getProviderState", () =>
      this.#get("SELECT * FROM provider_states WHERE provider = ?", provider),
    );
    return row === undefined ? null : providerStateFromRow(row);
  }

  async pauseProvider(pause: ProviderPause, options: { replaceEndingAfterMs?: number } = {}): Promise<void> {
    checkPause(pause);
    const replaceAfterMs = options.replaceEndingAfterMs ?? Number.MAX_SAFE_INTEGER;
    checkInstant(replaceAfterMs, "replaceEndingAfterMs");
    this.#write("pauseProvider", () =>
      this.#stmt(
        `INSERT INTO provider_pauses (provider, until_ms, error) VALUES (@provider, @untilMs, @error)
         ON CONFLICT (provider) DO UPDATE SET until_ms = excluded.until_ms, error = excluded.error
         WHERE excluded.until_ms > provider_pauses.until_ms OR provider_pauses.until_ms > @replaceAfterMs`,
      ).run({ ...pause, replaceAfterMs }),
    );
  }

  async getProviderPause(provider: string): Promise<ProviderPause | null> {
    const row = this.#read("getProviderPause", () =>
      this.#get("SELECT * FROM provider_pauses WHERE provider = ?", provider),
    );
    return row === undefined ? null : providerPauseFromRow(row);
  }

  async setProviderState(
    state: ProviderState,
    options: { keepIfReportedAfterMs?: number } = {},
  ): Promise<boolean> {
    return this.#write("setProviderState", () => {
      const old = this.#get<Row>("SELECT * FROM provider_states WHERE provider = ?", state.provider);
      const written = providerStateOver(old, state, options.keepIfReportedAfterMs);
      // since_ms is when the current status began: an unchanged status keeps it.
      this.#stmt(
        `INSERT INTO provider_states (provider, status, reason, last_error, since_ms, client_fingerprint, asserted_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (provider) DO UPDATE SET reason = excluded.reason, last_error = excluded.last_error,
           since_ms = CASE WHEN provider_states.status = excluded.status
             AND provider_states.client_fingerprint IS excluded.client_fingerprint
             THEN provider_states.since_ms ELSE excluded.since_ms END,
           status = excluded.status, client_fingerprint = excluded.client_fingerprint,
           asserted_at_ms = excluded.asserted_at_ms`,
      ).run(...providerStateValues(written));
      // A provider never seen is implicitly ok.
      const before = old === undefined ? null : providerStateFromRow(old);
      if (this.#outbox) this.#insertOutbox(outboxRowOfProviderState(state, before, randomUUID()));
      return (before?.status ?? "ok") !== state.status;
    });
  }

  async liftProviderFlag(
    provider: string,
    lift: { clientFingerprint: string | null; nowMs: number; staleBeforeMs?: number },
  ): Promise<boolean> {
    const whose =
      lift.staleBeforeMs === undefined
        ? "(@fingerprint IS NULL OR client_fingerprint IS NULL OR client_fingerprint = @fingerprint)"
        : "client_fingerprint <> @fingerprint AND asserted_at_ms < @staleBeforeMs";
    return this.#write("liftProviderFlag", () => {
      // Read in the write transaction, so the flag's date is the one this update ends.
      const flag = this.#get<Row>(
        "SELECT since_ms FROM provider_states WHERE provider = ? AND status = 'misconfigured'",
        provider,
      );
      if (flag === undefined) return false;
      const lifted =
        this.#stmt(
          `UPDATE provider_states SET status = 'ok', reason = NULL, last_error = NULL, since_ms = @nowMs,
             client_fingerprint = @fingerprint, asserted_at_ms = NULL
           WHERE provider = @provider AND status = 'misconfigured' AND ${whose}`,
        ).run({
          provider,
          fingerprint: lift.clientFingerprint,
          nowMs: lift.nowMs,
          ...(lift.staleBeforeMs === undefined ? {} : { staleBeforeMs: lift.staleBeforeMs }),
        }).changes > 0;
      if (lifted && this.#outbox) {
        this.#insertOutbox(
          outboxRowOfProviderLift(provider, Number(flag["since_ms"]), lift.nowMs, randomUUID()),
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
    return this.#write(
      "reassertProviderFlag",
      () =>
        this.#stmt(
          `UPDATE provider_states SET asserted_at_ms = @nowMs, client_fingerprint = @fingerprint
           WHERE provider = @provider AND status = 'misconfigured' AND client_fingerprint IS NOT NULL
             AND (asserted_at_ms IS NULL OR asserted_at_ms <
               CASE WHEN client_fingerprint = @fingerprint THEN @ownBeforeMs ELSE @othersBeforeMs END)`,
        ).run({ provider, fingerprint: clientFingerprint, nowMs, ...before }).changes > 0,
    );
  }

  async checkKeyRing(): Promise<void> {
    const { sample, opensSome } = this.#read("checkKeyRing", () => {
      const any = this.#get<{ sealed: string }>(
        "SELECT access_token_sealed AS sealed FROM credentials LIMIT 1",
      );
      // One statement over all the ring's keys (a new key comes first before `keys rotate`, and a
      // query per key would scan the table for it): a full scan only in the case it refuses.
      const prefixes = this.#sealer.keyIds.map(sealedPrefix);
      const held = this.#get(
        `SELECT 1 FROM credentials WHERE ${prefixes.map(() => "substr(access_token_sealed, 1, length(?)) = ?").join(" OR ")} LIMIT 1`,
        ...prefixes.flatMap((p) => [p, p]),
      );
      return { sample: any?.sealed ?? null, opensSome: held !== undefined };
    });
    checkRingHolds(sample, opensSome);
    await checkRingKeys(this.#sealer, {
      setting: async (key) =>
        this.#read(
          "checkKeyRing",
          () => this.#get<{ value: string }>("SELECT value FROM settings WHERE key = ?", key)?.value ?? null,
        ),
      sealedWith: async (keyId) => {
        const prefix = sealedPrefix(keyId);
        const rows = this.#read("checkKeyRing", () =>
          this.#all<SampledRow>(
            `SELECT connection_id, kind, access_token_sealed AS access, refresh_token_sealed AS refresh
             FROM credentials
             WHERE substr(access_token_sealed, 1, ?) = ? OR substr(refresh_token_sealed, 1, ?) = ? LIMIT 3`,
            prefix.length,
            prefix,
            prefix.length,
            prefix,
          ),
        );
        return samplesUnder(keyId, rows);
      },
      putSettingIfAbsent: async (key, value) => (await this.putSettingIfAbsent(key, value)).value,
      // One machine, one clock: the processes sharing the file read this host's.
      nowMs: async () => Date.now(),
    });
  }

  async resealBatch(limit: number, after: CredentialRef | null = null): Promise<ResealBatch> {
    checkLimit(limit, "limit");
    const prefix = sealedPrefix(this.#sealer.currentKeyId);
    const batch = this.#write("resealBatch", () => {
      // Before any value moves: from now on an instance starting with an older key first is refused.
      if (after === null) {
        const ids = this.#sealer.keyIds;
        const seen = this.#all<{ key: string; value: string }>(
          `SELECT key, value FROM settings WHERE key IN (${ids.map(() => "?").join(", ")})`,
          ...ids.map(keyFirstSeenSetting),
        );
        for (const mark of rotatedAwayMarks(this.#sealer, firstSeenTimes(seen))) {
          this.#stmt(
            `INSERT INTO settings (key, value) VALUES (?, ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value <> excluded.value`,
          ).run(mark.key, mark.value);
        }
      }
      // substr, not LIKE: `_` in a key id is a LIKE wildcard. In key order from `after`, so a row
      // left as it is (unreadable) is passed over, not read again by every later batch.
      const stale = this.#records(
        `WHERE (substr(access_token_sealed, 1, ?) <> ?
                OR (refresh_token_sealed IS NOT NULL AND substr(refresh_token_sealed, 1, ?) <> ?))
           ${after === null ? "" : "AND (connection_id, kind) > (?, ?)"}
         ORDER BY connection_id, kind LIMIT ?`,
        prefix.length,
        prefix,
        prefix.length,
        prefix,
        ...(after === null ? [] : [after.connectionId, after.kind]),
        limit,
      );
      const { batch, patches } = resealRows(this.#sealer, stale, limit);
      // Same plaintext, so the version stays: caches need not notice a re-seal.
      for (const { ref, patch } of patches) this.#update(ref, patch);
      return batch;
    });
    // At the end of a pass: copy the WAL into the file and empty it, so the previous pages (old
    // ciphertexts) are gone from disk and the old key can be retired at once.
    if (batch.next === null) this.#run("resealBatch", () => this.#truncateWal());
    return batch;
  }

  /**
   * Best effort, and brief: a TRUNCATE checkpoint holds the write lock while it waits for readers of
   * older snapshots, so every other process's writes (and, better-sqlite3 being synchronous, their
   * event loops) wait with it. With the full busy_timeout, one reader that keeps its snapshot (a
   * backup, Litestream, a sqlite3 shell) stalled them all for 5 s, twice per rotation.
   */
  #truncateWal(): void {
    const busyTimeoutMs = this.#db.pragma("busy_timeout", { simple: true }) as number;
    this.#db.pragma(`busy_timeout = ${Math.min(busyTimeoutMs, TRUNCATE_WAIT_MS)}`);
    try {
      this.#db.pragma("wal_checkpoint(TRUNCATE)");
    } finally {
      this.#db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    }
  }

  async claimOutbox(options: {
    owner: string;
    nowMs: number;
    leaseMs: number;
    limit: number;
  }): Promise<OutboxMessage[]> {
    const limit = checkLimit(options.limit, "limit");
    return this.#write("claimOutbox", () => {
      const rows = this.#all(
        `SELECT * FROM outbox
         WHERE next_attempt_at_ms <= ? AND (lease_until_ms IS NULL OR lease_until_ms <= ?)
         ORDER BY next_attempt_at_ms, created_at_ms LIMIT ?`,
        options.nowMs,
        options.nowMs,
        limit,
      );
      const lease = this.#stmt("UPDATE outbox SET lease_owner = ?, lease_until_ms = ? WHERE id = ?");
      for (const row of rows) lease.run(options.owner, options.nowMs + options.leaseMs, row["id"]);
      return rows.map(outboxMessageFromRow);
    });
  }

  async completeOutbox(id: string, owner: string, nowMs: number): Promise<boolean> {
    return this.#write(
      "completeOutbox",
      () =>
        this.#stmt(
          `UPDATE outbox SET delivered_at_ms = ?, next_attempt_at_ms = NULL, attempts = attempts + 1,
             lease_owner = NULL, lease_until_ms = NULL, last_error = NULL
           WHERE id = ? AND lease_owner = ? AND delivered_at_ms IS NULL`,
        ).run(nowMs, id, owner).changes === 1,
    );
  }

  async pruneEvents(beforeMs: number, limit: number): Promise<number> {
    const n = checkLimit(limit, "limit");
    return this.#write(
      "pruneEvents",
      () =>
        this.#stmt(
          `DELETE FROM events WHERE id IN (
             SELECT id FROM (SELECT id, at_ms FROM events ORDER BY id LIMIT @n) WHERE at_ms < @before)`,
        ).run({ before: beforeMs, n }).changes,
    );
  }

  async pruneOutbox(beforeMs: number, limit: number): Promise<number> {
    const n = checkLimit(limit, "limit");
    return this.#write(
      "pruneOutbox",
      () =>
        this.#stmt(
          `DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox WHERE delivered_at_ms IS NOT NULL AND delivered_at_ms < @before
             UNION ALL
             SELECT id FROM outbox WHERE abandoned_at_ms IS NOT NULL AND abandoned_at_ms < @before
             LIMIT @n)`,
        ).run({ before: beforeMs, n }).changes,
    );
  }

  async abandonOutbox(id: string, owner: string, nowMs: number, lastError: string): Promise<boolean> {
    return this.#write(
      "abandonOutbox",
      () =>
        this.#stmt(
          `UPDATE outbox SET next_attempt_at_ms = NULL, attempts = attempts + 1, last_error = ?,
             lease_owner = NULL, lease_until_ms = NULL, abandoned_at_ms = ?
           WHERE id = ? AND lease_owner = ? AND delivered_at_ms IS NULL`,
        ).run(lastError.slice(0, 500), nowMs, id, owner).changes === 1,
    );
  }

  async retryOutbox(id: string, owner: string, nextAttemptAtMs: number, lastError: string): Promise<boolean> {
    return this.#write(
      "retryOutbox",
      () =>
        this.#stmt(
          `UPDATE outbox SET next_attempt_at_ms = ?, attempts = attempts + 1, last_error = ?,
             lease_owner = NULL, lease_until_ms = NULL
           WHERE id = ? AND lease_owner = ? AND delivered_at_ms IS NULL`,
        ).run(nextAttemptAtMs, lastError.slice(0, 500), id, owner).changes === 1,
    );
  }

  async markOnce(scope: string, key: string, nowMs: number, expiresAtMs: number): Promise<boolean> {
    checkMark(scope, key);
    return this.#write("markOnce", () => {
      // Expired marks go first (through their index), so a lapsed mark never blocks and the table stays small.
      this.#stmt("DELETE FROM once_marks WHERE expires_at_ms <= ?").run(nowMs);
      return (
        this.#stmt(
          "INSERT INTO once_marks (scope, key, expires_at_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        ).run(scope, key, expiresAtMs).changes === 1
      );
    });
  }

  async hasMark(scope: string, key: string, nowMs: number): Promise<boolean> {
    checkMark(scope, key);
    return this.#read(
      "hasMark",
      () =>
        this.#get(
          "SELECT 1 FROM once_marks WHERE scope = ? AND key = ? AND expires_at_ms > ?",
          scope,
          key,
          nowMs,
        ) !== undefined,
    );
  }

  async unmarkOnce(scope: string, key: string, expiresAtMs?: number): Promise<void> {
    this.#write("unmarkOnce", () =>
      this.#stmt(
        "DELETE FROM once_marks WHERE scope = @scope AND key = @key AND (@exp IS NULL OR expires_at_ms = @exp)",
      ).run({ scope, key, exp: expiresAtMs ?? null }),
    );
  }

  async extendMark(
    scope: string,
    key: string,
    fromExpiresAtMs: number,
    toExpiresAtMs: number,
  ): Promise<boolean> {
    checkMark(scope, key);
    return this.#write(
      "extendMark",
      () =>
        this.#stmt(
          "UPDATE once_marks SET expires_at_ms = ? WHERE scope = ? AND key = ? AND expires_at_ms = ?",
        ).run(toExpiresAtMs, scope, key, fromExpiresAtMs).changes === 1,
    );
  }

  async putSettingIfAbsent(key: string, value: string): Promise<{ value: string; inserted: boolean }> {
    return this.#write("putSettingIfAbsent", () => {
      const inserted =
        this.#stmt("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING").run(key, value)
          .changes === 1;
      const row = this.#get<{ value: string }>("SELECT value FROM settings WHERE key = ?", key);
      return { value: row?.value ?? value, inserted };
    });
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.#write("putSetting", () =>
      this.#stmt(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ).run(key, value),
    );
  }

  async countConnectionsByStatus(): Promise<Record<Status, number>> {
    const rows = this.#read("countConnectionsByStatus", () =>
      this.#all<{ status: Status; n: number }>(
        "SELECT status, count(*) AS n FROM connections GROUP BY status",
      ),
    );
    const counts: Record<Status, number> = { active: 0, refresh_failing: 0, needs_reauth: 0 };
    for (const r of rows) counts[r.status] = Number(r.n);
    return counts;
  }

  async endOutageBackoffs(provider: string, nowMs: number, inDoubtDelayMs: number): Promise<number> {
    const at = "CASE WHEN refresh_in_doubt = 1 THEN @inDoubtAtMs ELSE @nowMs END";
    return this.#write("endOutageBackoffs", () => {
      return this.#stmt(
        `UPDATE credentials SET next_run_at_ms = ${at}, next_attempt_at_ms = ${at} ${OUTAGE_BACKOFF_CLAUSE}`,
      ).run({ provider, nowMs, inDoubtAtMs: nowMs + inDoubtDelayMs }).changes;
    });
  }

  async refreshBacklog(provider: string, nowMs: number, cap: number): Promise<RefreshBacklog> {
    const row = this.#read("refreshBacklog", () =>
      this.#get<{ due: number; oldest: number | null }>(
        // A credential the provider keeps failing is backed off past now, yet still due and not
        // done: it counts from when it first fell due (the second half, migration 0011's index).
        `SELECT count(*) AS due, min(since) AS oldest FROM (
           SELECT * FROM (
             SELECT CASE WHEN status = 'refresh_failing' AND refresh_due_at_ms < next_run_at_ms
                      THEN refresh_due_at_ms ELSE next_run_at_ms END AS since
             FROM credentials ${DUE_CLAUSE} ORDER BY next_run_at_ms LIMIT @cap)
           UNION ALL
           SELECT * FROM (
             SELECT refresh_due_at_ms AS since FROM credentials
             WHERE provider = @provider AND status = 'refresh_failing' AND refresh_due_at_ms <= @nowMs
               AND next_run_at_ms > @nowMs AND refresh_token_sealed IS NOT NULL
             ORDER BY refresh_due_at_ms LIMIT @cap)
           ORDER BY since LIMIT @cap)`,
        { provider, nowMs, cap },
      ),
    );
    return { due: Number(row?.due ?? 0), oldestDueAtMs: row?.oldest ?? null };
  }

  changeStamp(_ref: CredentialRef): number {
    // data_version changes when ANOTHER connection commits; our own writes bump #changes in #write.
    // Reading it costs ~1 µs (a statement step), ten times the rest of the token hot path, so a read
    // stands until a 1 ms timer (re-armed, not re-created) says otherwise. Even reading the clock to
    // decide was a quarter of the hot path. As on PostgreSQL, where the change arrives as a
    // notification, another process's commit is seen once the event loop turns and 1 ms has passed,
    // far inside what is safe (Slack keeps the previous access token valid; it takes two more
    // rotations to revoke it).
    if (this.#stampFresh) return this.#changes;
    // Closed: a stamp no cache entry holds, so the hot path misses (and never throws) after close().
    if (!this.#db.open) return Number.NaN;
    const version = this.#dataVersion.get() as number;
    if (version !== this.#lastDataVersion) {
      this.#lastDataVersion = version;
      this.#changes++;
    }
    this.#stampFresh = true;
    this.#staleTimer.refresh();
    return this.#changes;
  }

  #record(ref: CredentialRef): CredentialRecord | null {
    const row = this.#get(
      "SELECT * FROM credentials WHERE connection_id = ? AND kind = ?",
      ref.connectionId,
      ref.kind,
    );
    return row === undefined ? null : recordFromRow(row);
  }

  #records(clause: string, ...params: unknown[]): CredentialRecord[] {
    return this.#all(`SELECT * FROM credentials ${clause}`, ...params).map(recordFromRow);
  }

  #update(ref: CredentialRef, patch: CredentialPatch): void {
    const columns = credentialColumns(patch, sqliteBoolean);
    this.#stmt(
      `UPDATE credentials SET ${columns.map(([c]) => `${c} = ?`).join(", ")} WHERE connection_id = ? AND kind = ?`,
    ).run(...columns.map(([, v]) => v), ref.connectionId, ref.kind);
  }

  #insertCredential(record: CredentialRecord): void {
    const columns = credentialColumns(record, sqliteBoolean);
    this.#stmt(
      `INSERT INTO credentials (${columns.map(([c]) => c).join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
    ).run(...columns.map(([, v]) => v));
  }

  /**
   * Rewrites the connection's status as the worst of its credentials', then records `events` and,
   * when an episode starts or ends, its `needs_reauth` / `recovered` event — all in the caller's
   * transaction, so the event log (and the webhooks fed from it) never misses an episode.
   */
  #rollUp(connectionId: string, nowMs: number, events: NewEvent[]): StatusChange | null {
    const row = this.#get<StatusRow>("SELECT status FROM connections WHERE id = ?", connectionId);
    if (row === undefined) {
      this.#insertEvents(events);
      return null;
    }
    const worst = rollUpStatus(this.#records("WHERE connection_id = ?", connectionId).sort(byKind));
    this.#stmt("UPDATE connections SET status = ?, reason = ?, updated_at_ms = ? WHERE id = ?").run(
      worst.status,
      worst.reason,
      nowMs,
      connectionId,
    );
    const change = { before: row.status, after: worst.status, reason: worst.reason };
    this.#insertEvents([...events, ...episodeEvents(connectionId, change, nowMs, events)]);
    return change;
  }

  #insertEvents(events: NewEvent[]): void {
    const insert = this.#stmt(
      "INSERT INTO events (connection_id, kind, type, reason, at_ms, data) VALUES (?, ?, ?, ?, ?, ?)",
    );
    for (const e of events) {
      insert.run(e.connectionId, e.kind, e.type, e.reason ?? null, e.atMs, JSON.stringify(e.data ?? {}));
      if (this.#outbox) {
        const provider = this.#get<{ provider: string }>(
          "SELECT provider FROM connections WHERE id = ?",
          e.connectionId,
        );
        if (provider !== undefined) this.#insertOutbox(outboxRowOfEvent(e, provider.provider, randomUUID()));
      }
    }
  }

  #insertOutbox(row: NewOutboxRow | null): void {
    if (row === null) return;
    const m = row.message;
    this.#stmt(
      `INSERT INTO outbox (id, type, payload, created_at_ms, attempts, next_attempt_at_ms)
       VALUES (?, ?, ?, ?, 0, ?)`,
    ).run(m.id, m.type, JSON.stringify(m.payload), m.createdAtMs, row.nextAttemptAtMs);
  }

  #get<T = Row>(sql: string, ...params: unknown[]): T | undefined {
    return this.#stmt(sql).get(...params) as T | undefined;
  }

  #all<T = Row>(sql: string, ...params: unknown[]): T[] {
    return this.#stmt(sql).all(...params) as T[];
  }

  #stmt(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** A write transaction holding the database's write lock from its first statement. */
  #write<T>(operation: string, fn: () => T): T {
    const before = this.#totalChanges.get() as number;
    const result = this.#run(operation, () => this.#db.transaction(fn).immediate());
    // Only a transaction that changed rows moves the stamp: a refresher pass that claimed nothing
    // (once a second) would otherwise send every cached token back to the store. (Other processes'
    // empty transactions leave data_version alone too: they write nothing to the file.)
    if ((this.#totalChanges.get() as number) !== before) this.#changes++;
    return result;
  }

  /** A read snapshot, so a connection and its credentials are read as of one instant. */
  #read<T>(operation: string, fn: () => T): T {
    return this.#run(operation, () => this.#db.transaction(fn).deferred());
  }

  #run<T>(operation: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw translateSqliteError(operation, error);
    }
  }
}

function sqliteBoolean(value: boolean): number {
  return value ? 1 : 0;
}

function groupByConnection(records: CredentialRecord[]): Map<string, CredentialRecord[]> {
  const groups = new Map<string, CredentialRecord[]>();
  for (const r of records) groups.set(r.connectionId, [...(groups.get(r.connectionId) ?? []), r]);
  return groups;
}
