import type { Secret } from "./secret.js";
import type {
  Classification,
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
  TokenSet,
} from "./types.js";

/** The only source of time: epoch milliseconds. Tests pass a fake one. */
export interface Clock {
  now(): number;
  /**
   * Milliseconds from any origin on a clock that never steps (the host's monotonic clock), for a
   * process's own schedules: probe spacing, pauses, which of two moments came first. Optional: without
   * it they are read off `now()`, a backward step counted as no time passing (steady-clock.ts).
   */
  elapsedMs?(): number;
}

/** The only source of randomness for jitter, owner ids and OAuth state, so a failing test can replay. */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** `bytes` random bytes, base64url. */
  token(bytes: number): string;
}

/** Minimal structural logger: pino fits it. Never pass a raw token; `Secret`s redact themselves. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Authenticated encryption of secrets at rest. `aad` binds a value to its row
 * (connection id, credential kind, field), so a value copied elsewhere fails to open.
 */
export interface Sealer {
  /** Id of the key new values are sealed with; sealed values start with `v1.<keyId>.`. */
  readonly currentKeyId: string;
  seal(plaintext: string, aad: string): string;
  /** Seals with the ring's key `keyId` rather than the current one (a key check); throws if the ring lacks it. */
  sealWith(keyId: string, plaintext: string, aad: string): string;
  /** Throws if the value was tampered with, moved, or sealed with an unknown key. */
  open(sealed: string, aad: string): string;
  /** True when the value was sealed with a key other than the current (first) one. */
  needsReseal(sealed: string): boolean;
  /** The ids of the ring's keys, current first (ids are not secret). */
  readonly keyIds: readonly string[];
}

/** The right to spend one credential's refresh token, held by one process. */
export interface RefreshClaim {
  ref: CredentialRef;
  owner: string;
  /** Unique per claim: every write made under it is fenced on this id. */
  claimId: string;
}

/** A claim taken by the refresher (`Store.claimDue`); carries what `claimRefresh` would have said of a lost attempt. */
export interface DueClaim extends RefreshClaim {
  /** As in `ClaimResult`: an earlier refresh was started and its outcome never recorded. */
  previousAttemptLost: boolean;
  /** The claimed credential, read in the same statement: the refresher needs no second read. */
  credential: StoredCredential;
}

export type ClaimResult =
  | {
      kind: "claimed";
      claim: RefreshClaim;
      credential: StoredCredential;
      /**
       * An earlier refresh of this credential was started and its outcome never
       * recorded (the process died or the reply was lost). The old refresh token
       * is tried once more; if refused, the reason is `refresh_response_lost`.
       */
      previousAttemptLost: boolean;
    }
  /** Another process refreshed meanwhile; its token is valid until at least `freshUntilMs`. */
  | { kind: "already_fresh"; credential: StoredCredential }
  /** A live claim by another owner; wait for it and re-read, never spend the token yourself. */
  /**
   * `version` and `failureCount` as the holder found them: when either moves, the
   * holder has finished (refreshed or failed) and the waiter looks again.
   */
  | { kind: "held_by_other"; untilMs: number; version: number; failureCount: number }
  /** Dead (`needs_reauth`) or has no refresh token: nothing to spend. */
  | { kind: "not_refreshable"; credential: StoredCredential }
  | { kind: "not_found" };

export interface ClaimOptions {
  owner: string;
  nowMs: number;
  leaseMs: number;
  /** If the stored access token is valid until at least this instant, answer `already_fresh`. */
  freshUntilMs: number;
  /**
   * False when the holder will send no refresh (a delete quieting the credential before revoking
   * it): the refresh journal is left as it was, so a holder that dies meanwhile leaves no lost
   * attempt on record. Default true.
   */
  sends?: boolean;
}

export interface ClaimDueOptions {
  owner: string;
  /** Judges what is due. */
  nowMs: number;
  /**
   * The instant leases are taken and judged at, where it is not `nowMs`: a warden reading the
   * database's clock judges leases by the earlier of its two clocks (DatabaseAlignedClock.lease).
   */
  leaseNowMs?: number;
  leaseMs: number;
  /** At most this many claims. */
  limit: number;
  /**
   * Only credentials of this provider. An instance claims per provider it runs, each with its own
   * limit, so rows of a provider it does not run (or has paused) are never taken and use up no limit.
   */
  provider: string;
  /**
   * Told, once the batch is committed, of each due credential whose refresh token could not be opened
   * (its key is no longer configured, or the stored value was altered). Such a credential is not
   * claimed: its journal stays as it was, its status unchanged, and it is parked until `retryAtMs`
   * (`nowMs` + 1 hour; its claim's lease end if the write that parks it fails), so it neither blocks
   * the rest nor comes back at every pass. The store has no logger: this is where the caller logs it.
   * It must not throw: the batch's claims are already taken.
   */
  onUnreadable?: (credential: UnreadableCredential) => void;
}

/** What one `Store.resealBatch` did. Holds no secret. */
export interface ResealBatch {
  resealed: number;
  /** Credentials under an old key whose values did not open: left under that key (named by id). */
  unreadable: Array<{ ref: CredentialRef; keyId: string | null }>;
  /** Where the next batch starts (pass it as `after`); null once the batch reached the end. */
  next: CredentialRef | null;
}

/** A due credential `claimDue` could not open and parked instead of claiming. Holds no secret. */
export interface UnreadableCredential {
  ref: CredentialRef;
  provider: string;
  /** The key id the sealed refresh token names (`v1.<keyId>.…`; ids are not secret); null when malformed. */
  keyId: string | null;
  /** When `claimDue` will try it again. */
  retryAtMs: number;
  /** What `Sealer.open` threw (`config_invalid`: it names the key id, never the value). */
  error: unknown;
  /**
   * Set when the store could not write the park: the claim `claimDue` took is still held, its journal
   * open. Whoever receives this hands it back (`releaseClaim`), or at lease end the next claimer would
   * record an attempt that never left as lost, and a refusal then would read `refresh_response_lost`.
   */
  unparked?: RefreshClaim;
}

export interface RefreshResult {
  tokens: TokenSet;
  /** Merged into the stored provider data (Slack: bot_user_id, user_id). */
  providerData: Record<string, unknown>;
  /** When the refresher should next refresh this credential (core/refresh-policy); null: never. */
  refreshDueAtMs: number | null;
}

export interface CompletionItem {
  claim: RefreshClaim;
  result: RefreshResult;
  /**
   * The new tokens' issue (and refresh) time: when the request was sent, not when its answer came.
   * A refresh the provider answered was processed before anything that follows it (an uninstall
   * among them), so a signal dated after this instant is about these tokens too.
   */
  nowMs: number;
  event: NewEvent;
}

/** What storing one refresh's outcome did (`Store.completeRefreshes`). */
export type CompletionOutcome =
  /** Stored; `change` is the connection's status change it caused (a `recovered` episode), if any. */
  | { kind: "stored"; change: StatusChange | null }
  /** Not stored: the claim was no longer ours. */
  | { kind: "fenced" }
  /** Not stored: this item's write failed (the others' answers stand). */
  | { kind: "failed"; error: unknown };

export interface FailureRecord {
  status: Status;
  reason: Reason;
  lastError: string;
  /** When the refresher may try again; null for dead credentials. */
  nextAttemptAtMs: number | null;
  /** The request may have reached the provider, so its outcome is unknown (keeps the journal entry open). */
  inDoubt: boolean;
}

/** What a status verdict changed (`Store.setCredentialStatus`): the kinds it applied to, and the roll-up. */
export interface VerdictChange extends StatusChange {
  changed: CredentialKind[];
}

export interface StatusChange {
  /** Connection status before and after, for `needs_reauth` / `recovered` episodes. */
  before: Status | null;
  after: Status | null;
  /** The connection's reason after the change. */
  reason: Reason | null;
}

/** What `Store.deleteCredential` did. */
export type CredentialDeletion =
  /** Removed; `change` is the connection's status rolled up from the credentials left. */
  | { kind: "deleted"; change: StatusChange }
  /** No such connection, or it holds no credential of that kind. */
  | { kind: "not_found" }
  /** It is the connection's only credential: nothing removed (a connection keeps at least one). */
  | { kind: "last_credential" }
  /** It is no longer at `ifVersion` (other tokens were stored meanwhile): nothing removed. */
  | { kind: "changed" };

/**
 * An installation a provider names in a signal of its own (Slack: an event's workspace or org),
 * looked up in the connections' metadata. At least one of `teamId` and `enterpriseId`.
 */
export interface InstallationQuery {
  provider: string;
  /** Matches metadata `team_id`. */
  teamId?: string;
  /**
   * Matches metadata `enterprise_id` of an org-wide install only: one whose `team_id` is absent or
   * null (what the install flow records for one), or is the enterprise id itself (what `auth.test`
   * answers for an org-wide token). A workspace of the org, with a `team_id` of its own, is another
   * installation: an event about the org's other workspaces is not about it.
   */
  enterpriseId?: string;
  /** 1–10000. */
  limit: number;
}

export interface ListFilter {
  provider?: string;
  status?: Status;
  /** Opaque cursor from a previous page. */
  cursor?: string;
  limit: number;
}

/**
 * Where connections, credentials and events live. One transaction per method:
 * each either commits whole or changes nothing. Instants are epoch ms passed
 * in by the caller; no adapter reads the clock itself.
 */
export interface RefreshBacklog {
  /** Due refreshes, up to the cap asked for. */
  due: number;
  oldestDueAtMs: number | null;
}

export interface Store {
  /**
   * Applies pending migrations; safe when several processes start at once. Returns the names of those
   * this call applied (none when the schema was up to date, or another process applied them first).
   */
  migrate(): Promise<string[]>;
  /**
   * Migrations the database records that this release does not have (`0011_name`), oldest first: a
   * newer release applied them. Empty when the schema is this release's (or older, before migrate).
   * Optional, so a store of your own written before it existed still opens.
   */
  newerMigrations?(): Promise<string[]>;
  close(): Promise<void>;
  /** Throws `store_unavailable` when the database cannot answer. */
  ping(): Promise<void>;

  /**
   * Creates or replaces a connection with its credentials (status back to
   * `active`, claims and backoff cleared), appending `event` per credential.
   * The metadata replaces the stored one; with `mergeMetadata`, its keys are laid over the
   * stored metadata as it is at the write (top level, given keys win), so a key written since the
   * caller last read the connection is kept.
   */
  putConnection(
    input: NewConnection,
    nowMs: number,
    events: NewEvent[],
    options?: { mergeMetadata?: boolean },
  ): Promise<StatusChange>;
  getConnection(id: string): Promise<Connection | null>;
  listConnections(filter: ListFilter): Promise<{ items: Connection[]; nextCursor: string | null }>;
  /**
   * Ids (ascending, at most `limit`) of `provider`'s connections whose metadata names the
   * installation: how a connection imported under an id of its own (or a generated `conn_…`) is
   * found from a provider's event. Found through expression indexes on the metadata keys
   * (migration 0008), not by reading every connection.
   */
  findConnectionsByInstallation(query: InstallationQuery): Promise<string[]>;
  /** Removes the connection, its credentials and events. False when it did not exist. */
  deleteConnection(id: string): Promise<boolean>;
  /**
   * Removes one credential of a connection (its tokens, claim and schedule), appends `event`, and
   * rolls the connection's status up from the credentials left, recording the episode it ends (a dead
   * credential removed: `recovered`), in one transaction. Refuses the connection's last credential.
   * With `ifVersion`, only while the credential is at that version (its tokens are still the ones
   * the caller revoked). Optional, so a store of your own written before it existed still opens.
   */
  deleteCredential?(
    ref: CredentialRef,
    nowMs: number,
    event: NewEvent,
    options?: { ifVersion?: number },
  ): Promise<CredentialDeletion>;
  /** Merges `patch` into the connection's metadata; with `onlyMissing`, keys already there win. */
  updateMetadata(
    id: string,
    patch: Record<string, unknown>,
    nowMs: number,
    options?: { onlyMissing?: boolean },
  ): Promise<boolean>;

  /**
   * Records what a health check learned of one credential's tokens (Slack: the member a user token is
   * of, `user_id`) in its provider data, for each key it has no value for (absent or null), never
   * overwriting one: a value there came from the provider's install or refresh answer. Only while the
   * credential is at `ifVersion` (its tokens are still the ones checked; a fact about tokens replaced
   * meanwhile would be laid on another's). The version stays: the tokens did not change. Returns
   * whether it wrote. Optional, so a store of your own written before it existed still opens; without
   * it a check records nothing there.
   */
  learnProviderData?(ref: CredentialRef, facts: Record<string, string>, ifVersion: number): Promise<boolean>;

  getCredential(ref: CredentialRef): Promise<StoredCredential | null>;
  listCredentials(connectionId: string): Promise<StoredCredential[]>;

  /** Takes the right to spend ref's refresh token until nowMs + leaseMs, recording that a refresh started. */
  claimRefresh(ref: CredentialRef, options: ClaimOptions): Promise<ClaimResult>;
  /** Extends a live claim. False when the claim is no longer ours. */
  renewClaim(claim: RefreshClaim, nowMs: number, leaseMs: number): Promise<boolean>;
  /**
   * Persists the new tokens (keeping the old refresh token when `tokens.refreshToken`
   * is null), sets the credential `active`, clears the claim and appends `event`,
   * in one transaction, iff the claim is still ours. Returns false when it was not.
   */
  completeRefresh(
    claim: RefreshClaim,
    result: RefreshResult,
    nowMs: number,
    event: NewEvent,
  ): Promise<boolean>;
  /**
   * `completeRefresh` for several claims at once: each item is fenced and applied on its own, but
   * the store may commit them together (SQLite: one transaction, one fsync). Answers per item; a
   * rejection means none of them was stored.
   */
  completeRefreshes(items: CompletionItem[]): Promise<CompletionOutcome[]>;
  /** Records a failed attempt and releases the claim (fenced like completeRefresh). */
  failRefresh(
    claim: RefreshClaim,
    failure: FailureRecord,
    nowMs: number,
    event: NewEvent,
  ): Promise<StatusChange | null>;
  /** Releases a claim without recording an outcome (e.g. the attempt never left this process). */
  releaseClaim(claim: RefreshClaim): Promise<void>;
  /**
   * Ends the backoff of `provider`'s credentials failing for an outage (`refresh_failing`, reason
   * `provider_unavailable`, unclaimed): due, and open to callers' refreshes, at `nowMs`. Run when one of
   * them refreshes again: the provider is back, and the rest need not wait out backoffs that grew
   * through the outage. A 429's or another client's back-off is left, and so is a credential parked
   * for an unreadable refresh token (it waits for its key). A refresh in doubt (its last request timed
   * out, lost its answer or got a 5xx) is made due `inDoubtDelayMs` from now, not at once: that request
   * may still reach the provider, and a retry sooner could spend the token before it does, the late
   * request then superseding what the retry stored. Returns how many it moved.
   * Optional, so a store of your own written before it existed still opens.
   */
  endOutageBackoffs?(provider: string, nowMs: number, inDoubtDelayMs: number): Promise<number>;

  /**
   * Sets the status of some or all credentials of a connection (uninstall,
   * revocation, a health check's verdict), appending `events`.
   * @param ifVersions a verdict about particular tokens: a credential changes only while its
   * version is the one given (its tokens are still those); the events of a credential left
   * unchanged are dropped, and with none changed nothing is written (null).
   */
  setCredentialStatus(
    connectionId: string,
    kinds: CredentialKind[] | "all",
    status: { status: Status; reason: Reason | null; lastError: string | null },
    nowMs: number,
    events: NewEvent[],
    ifVersions?: Partial<Record<CredentialKind, number>>,
    /** Only credentials issued before this instant (checked under the row lock). */
    ifIssuedBeforeMs?: number,
  ): Promise<VerdictChange | null>;

  /**
   * Claims up to `limit` credentials that are due — `next_run_at <= nowMs`
   * (the refresh policy's due time, a backoff's end, or a lapsed claim's
   * expiry), not `needs_reauth`, with a refresh token, not under a live claim,
   * of `provider` — most overdue first, exactly as `claimRefresh` would claim
   * each. Found through an index on (provider, next_run_at), so the cost grows
   * with that provider's due work only, however many rows of other providers
   * are due (a paused provider's backlog costs the others nothing); on
   * PostgreSQL, rows other instances are claiming are skipped (FOR UPDATE SKIP
   * LOCKED). A due credential whose refresh token cannot be opened is not
   * claimed but parked (see `ClaimDueOptions.onUnreadable`); the others are
   * claimed as usual.
   */
  claimDue(options: ClaimDueOptions): Promise<DueClaim[]>;

  appendEvents(events: NewEvent[]): Promise<void>;
  /** Newest first. */
  listEvents(connectionId: string, options: { limit: number; beforeId?: number }): Promise<StoredEvent[]>;

  getProviderState(provider: string): Promise<ProviderState | null>;
  /**
   * Records that the provider asked for a pause until `pause.untilMs`. A recorded pause that ends later
   * is kept (a shorter Retry-After heard meanwhile must not cut a live pause short), unless it ends
   * after `options.replaceEndingAfterMs`: later than any pause could end that was recorded now, so
   * dated by a clock that ran ahead, and not to outlive this one. Throws `invalid_input` for an
   * instant that is not a whole number of ms, or a NUL.
   */
  pauseProvider(pause: ProviderPause, options?: { replaceEndingAfterMs?: number }): Promise<void>;
  /** The provider's recorded pause, which may have ended by now, or null. */
  getProviderPause(provider: string): Promise<ProviderPause | null>;
  /**
   * Upserts; returns whether the status changed (a store writing webhooks queues `provider.misconfigured`
   * for a change to misconfigured, `provider.recovered` for one back to ok, in the same transaction).
   * With `keepIfReportedAfterMs` (when the refused request was sent), a `misconfigured` state naming
   * other credentials than a flag reported after then leaves that flag's name and date: the newer
   * evidence names the flag.
   */
  setProviderState(state: ProviderState, options?: { keepIfReportedAfterMs?: number }): Promise<boolean>;
  /**
   * Sets a `misconfigured` provider back to `ok`, recorded with `lift.clientFingerprint`; returns
   * whether it did. Without `staleBeforeMs` these credentials just worked: it lifts a flag that names
   * them or names none (a null fingerprint lifts any). With it, a flag that names other credentials
   * and was last reported before then: no process still sending them is running. A store writing
   * webhooks queues `provider.recovered` in the transaction that lifts it, so concurrent lifts of one
   * flag send one.
   */
  liftProviderFlag(
    provider: string,
    lift: { clientFingerprint: string | null; nowMs: number; staleBeforeMs?: number },
  ): Promise<boolean>;
  /**
   * A process still refused reports it again: a `misconfigured` flag is dated `nowMs` and named
   * `clientFingerprint` when it names these credentials and was last reported before
   * `before.ownBeforeMs`, or names other credentials and was last reported before
   * `before.othersBeforeMs` (about to go stale: their process has stopped reporting). A flag that
   * names none is left alone. Returns whether it wrote.
   */
  reassertProviderFlag(
    provider: string,
    clientFingerprint: string,
    nowMs: number,
    before: { ownBeforeMs: number; othersBeforeMs: number },
  ): Promise<boolean>;

  /**
   * Refuses a key ring that opens nothing the store holds: throws `config_invalid`, naming a key id
   * the store uses (never a key), when there are credentials and none is sealed with any key of the
   * ring (a wrong key). Some rows under a key dropped too early pass: those are parked one by one.
   * Refuses too a ring key whose id the store knows under other key material, and a ring whose first
   * key a rotation has moved values away from (see `checkRingKeys`).
   * Run at startup, before anything is written under the wrong key.
   */
  checkKeyRing(): Promise<void>;

  /**
   * Re-seals, in one transaction, the credentials with a token under an old key (both tokens) among
   * the next `limit` such credentials in key order (connection id, kind) after `after` (from the
   * start when null). One whose value does not open (its key is not in the ring, or it was altered)
   * is left as it is and reported; the others are re-sealed all the same. A pass's first batch (no
   * `after`) first marks the ring's keys older than the first as rotated away (`rotatedAwayMarks`).
   */
  resealBatch(limit: number, after?: CredentialRef | null): Promise<ResealBatch>;

  /**
   * Takes up to `limit` undelivered webhooks whose next attempt is due and that no live
   * lease holds, oldest due first, leasing them to `owner` until nowMs + leaseMs (on
   * PostgreSQL, rows another instance is claiming are skipped: FOR UPDATE SKIP LOCKED).
   * Only stores opened with `outbox: true` ever hold rows.
   */
  claimOutbox(options: {
    owner: string;
    nowMs: number;
    leaseMs: number;
    limit: number;
  }): Promise<OutboxMessage[]>;
  /** Marks a leased webhook delivered; false when the lease was no longer `owner`'s. */
  completeOutbox(id: string, owner: string, nowMs: number): Promise<boolean>;
  /** Releases a leased webhook for another attempt at `nextAttemptAtMs`; false when the lease was lost. */
  retryOutbox(id: string, owner: string, nextAttemptAtMs: number, lastError: string): Promise<boolean>;
  /**
   * Gives a leased webhook up (a dead letter): it is never claimed again and is pruned like a
   * delivered one; false when the lease was no longer `owner`'s.
   */
  abandonOutbox(id: string, owner: string, nowMs: number, lastError: string): Promise<boolean>;
  /** Deletes up to `limit` webhooks delivered or abandoned before `beforeMs`; returns how many. */
  pruneOutbox(beforeMs: number, limit: number): Promise<number>;
  /**
   * Deletes events recorded before `beforeMs`, oldest first, up to `limit`; returns how many. It looks
   * at the `limit` oldest events only, so a pass costs the same whatever the log's size (and an event
   * recorded out of order waits until those before it are old enough too).
   */
  pruneEvents(beforeMs: number, limit: number): Promise<number>;

  /**
   * Records that `key` happened in `scope` (a consumed OAuth state, a seen Slack event id) until
   * `expiresAtMs`. True for the first caller across every process; false while an unexpired mark exists.
   */
  markOnce(scope: string, key: string, nowMs: number, expiresAtMs: number): Promise<boolean>;
  /**
   * Whether an unexpired mark of `key` in `scope` exists at `nowMs` (a spent connect session); sets
   * none. Optional, so a store of your own written before it existed still opens; without it a
   * connect-session link installs as often as it is opened until it expires, as it did then.
   */
  hasMark?(scope: string, key: string, nowMs: number): Promise<boolean>;
  /**
   * Removes a mark (its processing failed and may be retried). With `expiresAtMs`, only the mark
   * set with that expiry: one made later by another caller stays.
   */
  unmarkOnce(scope: string, key: string, expiresAtMs?: number): Promise<void>;
  /**
   * Moves the expiry of the mark set with `fromExpiresAtMs` to `toExpiresAtMs`, in one write; false
   * when that mark is gone (expired, removed, or set again by another caller).
   */
  extendMark(scope: string, key: string, fromExpiresAtMs: number, toExpiresAtMs: number): Promise<boolean>;

  /** Stores `value` unless `key` has one; returns the value that is now stored and whether it was ours. */
  putSettingIfAbsent(key: string, value: string): Promise<{ value: string; inserted: boolean }>;
  /** Replaces a setting. */
  putSetting(key: string, value: string): Promise<void>;

  /** How many connections have each status, in one query (metrics). */
  countConnectionsByStatus(): Promise<Record<Status, number>>;
  /**
   * The refreshes of `provider` due at `nowMs` and not yet done (claimed or not: one in flight is
   * not done either, nor is one `refresh_failing` and backed off past `nowMs`): how many, counting at
   * most `cap`, and the due time of the most overdue (a failing one's first due time, not its next
   * attempt; null when none is due). Metrics: a refresher falling behind, or a provider failing.
   */
  refreshBacklog(provider: string, nowMs: number, cap: number): Promise<RefreshBacklog>;

  /**
   * The database's clock minus this host's wall clock, in ms, measured around a round trip; null when
   * no round trip was quick enough to trust, and absent where every process sharing the store shares
   * the host's clock too (SQLite). A warden adds it to its clock (DatabaseAlignedClock).
   */
  clockOffsetMs?(): Promise<number | null>;

  /**
   * A number that changes whenever another process may have changed `ref`.
   * Synchronous and cheap: the token hot path compares it to skip the database.
   */
  changeStamp(ref: CredentialRef): number;
  /**
   * Whether other processes' changes are heard right now (PostgreSQL: a LISTEN connection known to
   * deliver them); while not, every stamp reads as changed and every token read goes to the store.
   * Absent where they need no feed (SQLite reads its file's own change counter).
   */
  hearsChanges?(): boolean;
}

export interface RefreshInput {
  ref: CredentialRef;
  refreshToken: Secret;
  tokenType: string;
  scopes: string[];
  providerData: Record<string, unknown>;
}

export type RefreshOutcome =
  | { kind: "refreshed"; tokens: TokenSet; providerData: Record<string, unknown> }
  | {
      kind: "failed";
      classification: Classification;
      /** True when the request may have reached the provider (timeout, reset after send). */
      mayHaveReachedProvider: boolean;
    };

export type CheckOutcome =
  | {
      kind: "ok";
      providerData: Record<string, unknown>;
      /**
       * What the answer says of the installation itself (Slack: `team_id`, `enterprise_id`), recorded
       * in the connection's metadata where it has none: a reconnect link needs to know the workspace
       * of a connection imported without it.
       */
      installation?: Record<string, string>;
      /**
       * What the answer says of the credential's own tokens that an import may not have given (Slack:
       * the member a user token is of, `user_id`), recorded in its provider data where it has none
       * (`Store.learnProviderData`): the install flow reads whose user token a connection holds there.
       */
      credential?: Record<string, string>;
    }
  | { kind: "failed"; classification: Classification };

/**
 * An authorization server plus its API. Adapters translate wire formats and
 * errors once; the engine sees only domain types.
 */
export interface Provider {
  readonly id: string;
  /** Spends the refresh token once. Never throws for a provider answer or network failure. */
  refresh(input: RefreshInput, signal: AbortSignal): Promise<RefreshOutcome>;
  /** A health check with the access token (Slack: auth.test). */
  check(accessToken: Secret, signal: AbortSignal): Promise<CheckOutcome>;
  /**
   * Revokes one token (an access or a refresh token) at the provider; best effort. Slack with
   * rotation revokes only the token named (slack-api.md §3.8), so callers revoke each.
   */
  revoke(token: Secret, signal: AbortSignal): Promise<CheckOutcome>;
  /** Classifies an API error string seen by a caller (withToken, the proxy). */
  classifyApiError(error: string, httpStatus: number, retryAfterMs?: number): Classification;
  /**
   * Whether this provider's client is the one a credential's tokens were issued to, when it can tell
   * from the credential's provider data (Slack: `client_id`, recorded at install and refresh);
   * undefined when it cannot. A back-off another client's refusal (`scope: "credential"`) left on
   * the credential does not hold this warden back when it is the right client.
   */
  issuedToThisClient?(providerData: Record<string, unknown>): boolean | undefined;
  /**
   * Names the client credentials this provider sends, without revealing them (a truncated hash of the
   * client id and secret). A provider flag records it: a warden whose credentials differ (the new
   * secret, mid-rollout) ignores a refusal of the old ones. Without it, every flag applies.
   */
  readonly clientFingerprint?: string;
  /**
   * The credential kinds a connection of this provider holds (Slack: `bot` and `user`); an import
   * naming another kind is refused. Without it, any kind is taken.
   */
  readonly credentialKinds?: readonly CredentialKind[];
}
