/**
 * Every change a credential row goes through, as pure functions from the
 * locked row to a patch. Both adapters lock the row (SQLite: BEGIN IMMEDIATE;
 * PostgreSQL: SELECT … FOR UPDATE), call one of these, and write the patch in
 * the same transaction, so the semantics below exist once.
 *
 * `next_run_at_ms` is the scheduler's one column, indexed after the provider
 * (DESIGN.md "Storage and scale"): the policy's due time or a backoff's end. It is NULL
 * when there is nothing to do: no refresh token, or `needs_reauth`. The due
 * scan skips rows whose claim is live. Taking a claim on a due row (every
 * refresher claim, and on-demand ones inside the refresh margin) and renewing
 * any claim leave it alone, which keeps those writes off every index (on
 * PostgreSQL they are HOT updates: two index insertions fewer per refresh). A
 * claim on a row not yet due (a forced refresh, withToken after token_expired)
 * brings it forward to the lease's end, so a holder that dies is retried
 * inside Slack's grace window: that one write touches the due index.
 */
import type {
  ClaimOptions,
  ClaimResult,
  CredentialDeletion,
  FailureRecord,
  RefreshClaim,
  RefreshResult,
  StatusChange,
} from "../core/ports.js";
import { episodeTransition } from "../core/status.js";
import type {
  CredentialKind,
  NewConnection,
  NewCredential,
  NewEvent,
  Reason,
  Status,
  StoredCredential,
} from "../core/types.js";
import type { SealedTokens } from "./credential-sealing.js";
import type { CredentialPatch, CredentialRecord } from "./row-mapping.js";

export type ClaimDecision =
  | { kind: "not_found" }
  | { kind: "not_refreshable" }
  | { kind: "held_by_other"; untilMs: number; version: number; failureCount: number }
  | { kind: "already_fresh" }
  | { kind: "claim" };

export function decideClaim(record: CredentialRecord | null, options: ClaimOptions): ClaimDecision {
  if (record === null) return { kind: "not_found" };
  if (record.status === "needs_reauth" || record.refreshTokenSealed === null)
    return { kind: "not_refreshable" };
  if (hasLiveClaim(record, options.nowMs))
    return {
      kind: "held_by_other",
      untilMs: record.claimUntilMs ?? 0,
      version: record.version,
      failureCount: record.failureCount,
    };
  // Another process refreshed while this one waited for the lock: spend nothing.
  if (record.expiresAtMs !== null && record.expiresAtMs >= options.freshUntilMs)
    return { kind: "already_fresh" };
  return { kind: "claim" };
}

export function hasLiveClaim(record: CredentialRecord, nowMs: number): boolean {
  return record.claimId !== null && record.claimUntilMs !== null && record.claimUntilMs > nowMs;
}

/** True when `claimDue` may take the row (the SQL WHERE clause of both adapters says the same). */
export function isDue(record: CredentialRecord, nowMs: number, leaseNowMs = nowMs): boolean {
  return (
    record.nextRunAtMs !== null &&
    record.nextRunAtMs <= nowMs &&
    record.status !== "needs_reauth" &&
    record.refreshTokenSealed !== null &&
    !hasLiveClaim(record, leaseNowMs)
  );
}

/**
 * Takes the claim and opens the refresh journal (`refresh_in_doubt`), committed
 * before the refresh token leaves the process (invariant 6). The previous
 * journal value and run time are kept so `releaseClaim` can undo exactly this.
 * The credential is due again at the lease's end at the latest: if the claimer
 * dies, the refresher retries the old refresh token inside Slack's grace
 * window, not at the next scheduled refresh hours later (when it would be
 * refused). Completing, failing or releasing the claim sets the run time anew.
 */
export function claimPatch(
  record: CredentialRecord,
  claim: { owner: string; claimId: string },
  nowMs: number,
  leaseMs: number,
  sends = true,
): CredentialPatch {
  const untilMs = nowMs + leaseMs;
  return {
    claimId: claim.claimId,
    claimOwner: claim.owner,
    claimUntilMs: untilMs,
    claimPrevInDoubt: record.refreshInDoubt,
    claimPrevRunAtMs: record.nextRunAtMs,
    // The journal entry: a refresh may be sent from now on (unless the holder says it sends none).
    refreshInDoubt: sends || record.refreshInDoubt,
    nextRunAtMs: record.nextRunAtMs === null ? untilMs : Math.min(record.nextRunAtMs, untilMs),
  };
}

/** Writes made under a claim are fenced on its id: a lapsed-and-retaken or cleared claim writes nothing. */
export function holdsClaim(record: CredentialRecord | null, claim: RefreshClaim): record is CredentialRecord {
  return record !== null && record.claimId === claim.claimId;
}

export function renewPatch(nowMs: number, leaseMs: number): CredentialPatch & { claimUntilMs: number } {
  return { claimUntilMs: nowMs + leaseMs };
}

const CLEARED_CLAIM = {
  claimId: null,
  claimOwner: null,
  claimUntilMs: null,
  claimPrevInDoubt: null,
  claimPrevRunAtMs: null,
} as const satisfies CredentialPatch;

/** Invariant 2: the new tokens, and the old refresh token when the reply carried none. */
export function completionPatch(
  record: CredentialRecord,
  sealed: SealedTokens,
  result: RefreshResult,
  nowMs: number,
): CredentialPatch {
  return {
    ...CLEARED_CLAIM,
    accessTokenSealed: sealed.accessTokenSealed,
    refreshTokenSealed: sealed.refreshTokenSealed ?? record.refreshTokenSealed,
    tokenType: result.tokens.tokenType,
    scopes: result.tokens.scopes,
    expiresAtMs: result.tokens.expiresAtMs,
    issuedAtMs: nowMs,
    refreshedAtMs: nowMs,
    version: record.version + 1,
    status: "active",
    reason: null,
    lastError: null,
    failureCount: 0,
    nextAttemptAtMs: null,
    refreshInDoubt: false,
    providerData: { ...record.providerData, ...result.providerData },
    refreshDueAtMs: result.refreshDueAtMs,
    nextRunAtMs: result.refreshDueAtMs,
  };
}

/**
 * Records a failed attempt. A dead credential leaves the schedule; a live one
 * runs again when its backoff ends (or, with no backoff given, when it is due,
 * so a live credential is never orphaned). `inDoubt` keeps the journal open.
 */
export function failurePatch(record: CredentialRecord, failure: FailureRecord): CredentialPatch {
  const dead = failure.status === "needs_reauth";
  return {
    ...CLEARED_CLAIM,
    status: failure.status,
    reason: failure.reason,
    lastError: failure.lastError,
    failureCount: record.failureCount + 1,
    nextAttemptAtMs: dead ? null : failure.nextAttemptAtMs,
    refreshInDoubt: failure.inDoubt,
    nextRunAtMs: dead ? null : (failure.nextAttemptAtMs ?? record.refreshDueAtMs),
  };
}

/**
 * Undoes a claim whose request provably never left the process: the journal
 * and the schedule go back to what they were before it, so an earlier lost
 * attempt is still reported to the next claimer.
 */
export function releasePatch(record: CredentialRecord): CredentialPatch {
  return {
    ...CLEARED_CLAIM,
    refreshInDoubt: record.claimPrevInDoubt ?? false,
    nextRunAtMs: record.status === "needs_reauth" ? null : record.claimPrevRunAtMs,
  };
}

/**
 * How long a credential whose refresh token cannot be opened waits before `claimDue` tries it again.
 * Its key is an operator's problem (a key dropped from the ring, a value altered at rest), fixed on
 * the operator's time: hourly retries pick up a restored key without spinning on one that is gone.
 */
export const UNREADABLE_RETRY_MS = 3_600_000;

/**
 * Hands back a claim `claimDue` took on a credential it could not open, as `releasePatch` does, but
 * parks the credential for `UNREADABLE_RETRY_MS`: run at its old time, it would be first in the next
 * pass again. Status and reason stay: nothing is known about the installation itself.
 */
export function parkPatch(
  claimed: CredentialRecord,
  nowMs: number,
): CredentialPatch & { nextRunAtMs: number } {
  return { ...releasePatch(claimed), nextRunAtMs: nowMs + UNREADABLE_RETRY_MS };
}

/**
 * A verdict from outside the refresh path (uninstall, revocation, a health
 * check). Any claim is cleared so an in-flight refresh is fenced out; the
 * journal stays as it is, so if that refresh had left, its loss is still named.
 * A cleared claim moves `next_run_at_ms` to the claim's expiry: the fenced-out
 * request may still be in flight with the same refresh token, so nobody may
 * spend it again before its lease would have lapsed anyway.
 */
export function statusPatch(
  record: CredentialRecord,
  status: { status: Status; reason: Reason | null; lastError: string | null },
): CredentialPatch {
  const schedulable = status.status !== "needs_reauth" && record.refreshTokenSealed !== null;
  return {
    ...CLEARED_CLAIM,
    status: status.status,
    reason: status.reason,
    lastError: status.lastError,
    nextRunAtMs: schedulable ? nextRunAfterStatus(record) : null,
  };
}

function nextRunAfterStatus(record: CredentialRecord): number | null {
  const scheduled = record.nextRunAtMs ?? record.nextAttemptAtMs ?? record.refreshDueAtMs;
  if (record.claimId === null || record.claimUntilMs === null) return scheduled;
  return Math.max(record.claimUntilMs, scheduled ?? 0);
}

/**
 * A credential as `putConnection` writes it: active, no claim, no backoff, a
 * closed journal, at `version` (see credential-versions.ts).
 */
export function newCredentialRecord(
  connection: Pick<NewConnection, "id" | "provider">,
  credential: NewCredential,
  sealed: SealedTokens,
  version: number,
  nowMs: number,
): CredentialRecord {
  const due = sealed.refreshTokenSealed === null ? null : credential.refreshDueAtMs;
  return {
    connectionId: connection.id,
    kind: credential.kind,
    provider: connection.provider,
    ...sealed,
    tokenType: credential.tokens.tokenType,
    scopes: credential.tokens.scopes,
    expiresAtMs: credential.tokens.expiresAtMs,
    issuedAtMs: nowMs,
    refreshedAtMs: null,
    status: "active",
    reason: null,
    lastError: null,
    version,
    failureCount: 0,
    nextAttemptAtMs: null,
    refreshInDoubt: false,
    providerData: credential.providerData,
    refreshDueAtMs: due,
    claimId: null,
    claimOwner: null,
    claimUntilMs: null,
    claimPrevInDoubt: null,
    claimPrevRunAtMs: null,
    nextRunAtMs: due,
  };
}

const SEVERITY: Record<Status, number> = { active: 0, refresh_failing: 1, needs_reauth: 2 };

/**
 * A connection's status is its worst credential's, with that credential's
 * reason; ties go to the first in `rows` (callers pass them in kind order).
 */
export function rollUpStatus(rows: ReadonlyArray<{ status: Status; reason: Reason | null }>): {
  status: Status;
  reason: Reason | null;
} {
  let worst: { status: Status; reason: Reason | null } = { status: "active", reason: null };
  for (const row of rows) {
    if (SEVERITY[row.status] > SEVERITY[worst.status]) worst = { status: row.status, reason: row.reason };
  }
  return worst;
}

/** Turns a decision taken under the row lock into the port's answer; opens tokens only when returned. */
export function claimResultOf(
  decision: ClaimDecision,
  open: () => StoredCredential,
  taken: { claim: RefreshClaim; previousAttemptLost: boolean } | null,
): ClaimResult {
  switch (decision.kind) {
    case "not_found":
    case "held_by_other":
      return decision;
    case "already_fresh":
    case "not_refreshable":
      return { kind: decision.kind, credential: open() };
    case "claim":
      if (taken === null) throw new Error("a claim decision needs the claim it took");
      return { kind: "claimed", credential: open(), ...taken };
  }
}

/**
 * The `needs_reauth` / `recovered` event of an episode that this change starts or ends, if any. Its
 * kind is the credential the change came from, when `causes` (the credential events of the same
 * transaction) name one; null when several changed at once (an uninstall, an import of both).
 */
export function episodeEvents(
  connectionId: string,
  change: StatusChange,
  atMs: number,
  causes: readonly NewEvent[],
): NewEvent[] {
  const transition = episodeTransition(change.before, change.after);
  if (transition === null) return [];
  const kinds = new Set(causes.map((e) => e.kind));
  const [only] = kinds;
  return [
    {
      connectionId,
      kind: kinds.size === 1 ? (only ?? null) : null,
      type: transition,
      atMs,
      reason: transition === "needs_reauth" ? change.reason : null,
    },
  ];
}

/**
 * Which of a connection's credentials a status verdict applies to (setCredentialStatus): the kinds
 * named, and of those, with `ifVersions`, only the ones still at the version the verdict was about.
 * An uninstall is the last word on a dead credential until it is replaced: another dead verdict
 * (Slack's `tokens_revoked`, sent with the uninstall and racing it) leaves its reason alone.
 */
export function verdictApplies(
  record: CredentialRecord,
  kinds: CredentialKind[] | "all",
  ifVersions: Partial<Record<CredentialKind, number>> | undefined,
  status: { status: Status },
  ifIssuedBeforeMs?: number,
): boolean {
  if (kinds !== "all" && !kinds.includes(record.kind)) return false;
  if (ifIssuedBeforeMs !== undefined && record.issuedAtMs >= ifIssuedBeforeMs) return false;
  if (
    status.status === "needs_reauth" &&
    record.status === "needs_reauth" &&
    record.reason === "app_uninstalled"
  )
    return false;
  const version = ifVersions?.[record.kind];
  return version === undefined || version === record.version;
}

/** The events of a verdict that concern the credentials it changed (or the connection as a whole). */
export function eventsOf(events: NewEvent[], changed: readonly { kind: CredentialKind }[]): NewEvent[] {
  return events.filter((e) => e.kind === null || changed.some((c) => c.kind === e.kind));
}

/**
 * The provider data a check's `facts` leave (`Store.learnProviderData`): each fact where the stored
 * data has no value (absent or null), never over one; null when that adds nothing.
 */
export function learnedProviderData(
  stored: Record<string, unknown>,
  facts: Record<string, string>,
): Record<string, unknown> | null {
  const missing = Object.entries(facts).filter(([key]) => stored[key] === undefined || stored[key] === null);
  return missing.length === 0 ? null : { ...stored, ...Object.fromEntries(missing) };
}

/**
 * Why `Store.deleteCredential` leaves the credential of `kind` among a connection's `records` (locked)
 * where it is, if it does: none of that kind, no longer at `ifVersion`, or the connection's last one.
 * Null: it may go.
 */
export function deletionRefused(
  records: readonly { kind: CredentialKind; version: number }[],
  kind: CredentialKind,
  ifVersion: number | undefined,
): CredentialDeletion | null {
  const record = records.find((r) => r.kind === kind);
  if (record === undefined) return { kind: "not_found" };
  if (ifVersion !== undefined && record.version !== ifVersion) return { kind: "changed" };
  if (records.length === 1) return { kind: "last_credential" };
  return null;
}
