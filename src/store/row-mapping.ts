import type { RefreshClaim, Sealer, UnreadableCredential } from "../core/ports.js";
import { Secret } from "../core/secret.js";
import type {
  Connection,
  CredentialKind,
  CredentialSummary,
  ProviderPause,
  ProviderState,
  Reason,
  Status,
  StoredCredential,
  StoredEvent,
} from "../core/types.js";
import { CREDENTIAL_KINDS } from "../core/types.js";
import { sealedKeyId } from "../crypto/seal.js";
import { openTokens, tokenAad } from "./credential-sealing.js";

/**
 * A `credentials` row in domain units, tokens still sealed. Both adapters read
 * rows into this shape and write `CredentialPatch`es back, so every state
 * transition is written once (credential-transitions.ts).
 */
export interface CredentialRecord {
  connectionId: string;
  kind: CredentialKind;
  provider: string;
  accessTokenSealed: string;
  refreshTokenSealed: string | null;
  tokenType: string;
  scopes: string[];
  expiresAtMs: number | null;
  issuedAtMs: number;
  refreshedAtMs: number | null;
  status: Status;
  reason: Reason | null;
  lastError: string | null;
  version: number;
  failureCount: number;
  nextAttemptAtMs: number | null;
  refreshInDoubt: boolean;
  providerData: Record<string, unknown>;
  refreshDueAtMs: number | null;
  claimId: string | null;
  claimOwner: string | null;
  claimUntilMs: number | null;
  claimPrevInDoubt: boolean | null;
  claimPrevRunAtMs: number | null;
  nextRunAtMs: number | null;
}

export type CredentialPatch = Partial<Omit<CredentialRecord, "connectionId" | "kind">>;

/** Column of each record field; the only place the two spellings meet. */
export const CREDENTIAL_COLUMNS = {
  connectionId: "connection_id",
  kind: "kind",
  provider: "provider",
  accessTokenSealed: "access_token_sealed",
  refreshTokenSealed: "refresh_token_sealed",
  tokenType: "token_type",
  scopes: "scopes",
  expiresAtMs: "expires_at_ms",
  issuedAtMs: "issued_at_ms",
  refreshedAtMs: "refreshed_at_ms",
  status: "status",
  reason: "reason",
  lastError: "last_error",
  version: "version",
  failureCount: "failure_count",
  nextAttemptAtMs: "next_attempt_at_ms",
  refreshInDoubt: "refresh_in_doubt",
  providerData: "provider_data",
  refreshDueAtMs: "refresh_due_at_ms",
  claimId: "claim_id",
  claimOwner: "claim_owner",
  claimUntilMs: "claim_until_ms",
  claimPrevInDoubt: "claim_prev_in_doubt",
  claimPrevRunAtMs: "claim_prev_run_at_ms",
  nextRunAtMs: "next_run_at_ms",
} as const satisfies Record<keyof CredentialRecord, string>;

const JSON_FIELDS = new Set<string>(["scopes", "providerData"]);

export type DbValue = string | number | boolean | null;

/**
 * Column/value pairs for an INSERT or UPDATE. JSON goes as text (SQLite TEXT;
 * PostgreSQL casts an untyped parameter to the JSONB column); booleans as the
 * dialect wants them (SQLite has none).
 */
export function credentialColumns(
  patch: Partial<CredentialRecord>,
  encodeBoolean: (value: boolean) => DbValue,
): Array<[column: string, value: DbValue]> {
  return Object.entries(patch).map(([field, value]) => {
    const column = CREDENTIAL_COLUMNS[field as keyof CredentialRecord];
    if (JSON_FIELDS.has(field)) return [column, JSON.stringify(value)];
    if (typeof value === "boolean") return [column, encodeBoolean(value)];
    return [column, value as DbValue];
  });
}

type Row = Record<string, unknown>;

/** Reads a row from either driver: pg returns BIGINT as text and JSONB parsed, SQLite JSON as text. */
export function recordFromRow(row: Row): CredentialRecord {
  return {
    connectionId: text(row, "connection_id"),
    kind: text(row, "kind") as CredentialKind,
    provider: text(row, "provider"),
    accessTokenSealed: text(row, "access_token_sealed"),
    refreshTokenSealed: textOrNull(row, "refresh_token_sealed"),
    tokenType: text(row, "token_type"),
    scopes: json(row, "scopes") as string[],
    expiresAtMs: intOrNull(row, "expires_at_ms"),
    issuedAtMs: int(row, "issued_at_ms"),
    refreshedAtMs: intOrNull(row, "refreshed_at_ms"),
    status: text(row, "status") as Status,
    reason: textOrNull(row, "reason") as Reason | null,
    lastError: textOrNull(row, "last_error"),
    version: int(row, "version"),
    failureCount: int(row, "failure_count"),
    nextAttemptAtMs: intOrNull(row, "next_attempt_at_ms"),
    refreshInDoubt: bool(row, "refresh_in_doubt"),
    providerData: json(row, "provider_data") as Record<string, unknown>,
    refreshDueAtMs: intOrNull(row, "refresh_due_at_ms"),
    claimId: textOrNull(row, "claim_id"),
    claimOwner: textOrNull(row, "claim_owner"),
    claimUntilMs: intOrNull(row, "claim_until_ms"),
    claimPrevInDoubt: boolOrNull(row, "claim_prev_in_doubt"),
    claimPrevRunAtMs: intOrNull(row, "claim_prev_run_at_ms"),
    nextRunAtMs: intOrNull(row, "next_run_at_ms"),
  };
}

/** Opens the tokens; throws `config_invalid` if a key is missing or a value was tampered with. */
export function credentialFromRecord(r: CredentialRecord, sealer: Sealer): StoredCredential {
  const { accessToken, refreshToken } = openTokens(sealer, r);
  return credentialWithTokens(
    r,
    new Secret(accessToken),
    refreshToken === null ? null : new Secret(refreshToken),
  );
}

/**
 * A credential claimed for a background refresh: the refresh token is opened now (it is about to be
 * spent), the access token only if something reads it — a refresh that succeeds never does, and each
 * AES-GCM open is a few microseconds of a storm's budget.
 */
export function claimedCredentialFromRecord(r: CredentialRecord, sealer: Sealer): StoredCredential {
  const refreshToken =
    r.refreshTokenSealed === null ? null : sealer.open(r.refreshTokenSealed, tokenAad(r, "refresh"));
  const accessTokenSealed = r.accessTokenSealed;
  return credentialWithTokens(
    r,
    Secret.deferred(() => sealer.open(accessTokenSealed, tokenAad(r, "access"))),
    refreshToken === null ? null : new Secret(refreshToken),
  );
}

export type ClaimedOpening =
  | { kind: "opened"; credential: StoredCredential }
  | { kind: "unreadable"; keyId: string | null; error: unknown };

/**
 * `claimedCredentialFromRecord` that answers instead of throwing when the refresh token cannot be
 * opened, so one such row costs a batch that row only.
 */
export function openClaimedCredential(r: CredentialRecord, sealer: Sealer): ClaimedOpening {
  try {
    return { kind: "opened", credential: claimedCredentialFromRecord(r, sealer) };
  } catch (error) {
    const keyId = r.refreshTokenSealed === null ? null : sealedKeyId(r.refreshTokenSealed);
    return { kind: "unreadable", keyId, error };
  }
}

/** What `claimDue` reports of a credential it parked (see ClaimDueOptions.onUnreadable). */
export function unreadableCredential(
  r: CredentialRecord,
  opening: { keyId: string | null; error: unknown },
  retryAtMs: number,
  unparked?: RefreshClaim,
): UnreadableCredential {
  return {
    ref: { connectionId: r.connectionId, kind: r.kind },
    provider: r.provider,
    keyId: opening.keyId,
    retryAtMs,
    error: opening.error,
    ...(unparked === undefined ? {} : { unparked }),
  };
}

function credentialWithTokens(
  r: CredentialRecord,
  accessToken: Secret,
  refreshToken: Secret | null,
): StoredCredential {
  return {
    connectionId: r.connectionId,
    kind: r.kind,
    provider: r.provider,
    accessToken,
    refreshToken,
    tokenType: r.tokenType,
    scopes: r.scopes,
    expiresAtMs: r.expiresAtMs,
    issuedAtMs: r.issuedAtMs,
    status: r.status,
    reason: r.reason,
    lastError: r.lastError,
    version: r.version,
    failureCount: r.failureCount,
    nextAttemptAtMs: r.nextAttemptAtMs,
    refreshInDoubt: r.refreshInDoubt,
    claimUntilMs: r.claimId === null ? null : r.claimUntilMs,
    refreshedAtMs: r.refreshedAtMs,
    providerData: r.providerData,
  };
}

/** Everything but the tokens; nothing here needs a key. */
export function summaryFromRecord(r: CredentialRecord): CredentialSummary {
  return {
    kind: r.kind,
    status: r.status,
    reason: r.reason,
    lastError: r.lastError,
    tokenType: r.tokenType,
    scopes: r.scopes,
    expiresAtMs: r.expiresAtMs,
    issuedAtMs: r.issuedAtMs,
    refreshedAtMs: r.refreshedAtMs,
    hasRefreshToken: r.refreshTokenSealed !== null,
    failureCount: r.failureCount,
    nextAttemptAtMs: r.nextAttemptAtMs,
    version: r.version,
    providerData: r.providerData,
  };
}

/** Credentials in a stable order (bot, user, default), whatever order the database returned. */
export function byKind(a: { kind: CredentialKind }, b: { kind: CredentialKind }): number {
  return CREDENTIAL_KINDS.indexOf(a.kind) - CREDENTIAL_KINDS.indexOf(b.kind);
}

export function connectionFromRow(row: Row, credentials: CredentialRecord[]): Connection {
  return {
    id: text(row, "id"),
    provider: text(row, "provider"),
    status: text(row, "status") as Status,
    reason: textOrNull(row, "reason") as Reason | null,
    metadata: json(row, "metadata") as Record<string, unknown>,
    createdAtMs: int(row, "created_at_ms"),
    updatedAtMs: int(row, "updated_at_ms"),
    credentials: [...credentials].sort(byKind).map(summaryFromRecord),
  };
}

export function eventFromRow(row: Row): StoredEvent {
  return {
    id: int(row, "id"),
    connectionId: text(row, "connection_id"),
    kind: textOrNull(row, "kind") as CredentialKind | null,
    type: text(row, "type") as StoredEvent["type"],
    reason: textOrNull(row, "reason") as Reason | null,
    atMs: int(row, "at_ms"),
    data: json(row, "data") as Record<string, unknown>,
  };
}

/**
 * What a provider-state upsert writes over the row it found (locked): a `misconfigured` state for
 * other client credentials leaves a flag that names its own, reported after `keepIfReportedAfterMs`
 * (when this refusal's request was sent), named and dated as it is. The newer evidence names the flag:
 * a late answer to a request sent before someone else's refusal (credentials that work by now,
 * perhaps) must not take it, or its next success would lift the flag of processes refused now.
 */
export function providerStateOver(
  row: Row | undefined,
  state: ProviderState,
  keepIfReportedAfterMs: number | undefined,
): ProviderState {
  if (row === undefined || keepIfReportedAfterMs === undefined) return state;
  const named = textOrNull(row, "client_fingerprint");
  const reported = intOrNull(row, "asserted_at_ms");
  const keep =
    text(row, "status") === "misconfigured" &&
    state.status === "misconfigured" &&
    named !== null &&
    state.clientFingerprint != null &&
    named !== state.clientFingerprint &&
    reported !== null &&
    reported > keepIfReportedAfterMs;
  return keep ? { ...state, clientFingerprint: named, assertedAtMs: reported } : state;
}

/** A provider state's columns in the order the stores' upserts list them. */
export function providerStateValues(state: ProviderState): unknown[] {
  return [
    state.provider,
    state.status,
    state.reason,
    state.lastError,
    state.sinceMs,
    state.clientFingerprint ?? null,
    state.assertedAtMs ?? null,
  ];
}

export function providerStateFromRow(row: Row): ProviderState {
  return {
    provider: text(row, "provider"),
    status: text(row, "status") as ProviderState["status"],
    reason: textOrNull(row, "reason") as Reason | null,
    lastError: textOrNull(row, "last_error"),
    sinceMs: int(row, "since_ms"),
    clientFingerprint: textOrNull(row, "client_fingerprint"),
    assertedAtMs: intOrNull(row, "asserted_at_ms"),
  };
}

export function providerPauseFromRow(row: Row): ProviderPause {
  return { provider: text(row, "provider"), untilMs: int(row, "until_ms"), error: text(row, "error") };
}

function text(row: Row, column: string): string {
  const value = row[column];
  if (typeof value !== "string") throw new TypeError(`column ${column} is not text`);
  return value;
}

function textOrNull(row: Row, column: string): string | null {
  return row[column] === null ? null : text(row, column);
}

function int(row: Row, column: string): number {
  const value = row[column];
  // pg hands BIGINT back as text so it cannot lose precision; epoch ms fit a double exactly.
  const n = typeof value === "string" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n))
    throw new TypeError(`column ${column} is not an integer`);
  return n;
}

function intOrNull(row: Row, column: string): number | null {
  return row[column] === null ? null : int(row, column);
}

/** PostgreSQL BOOLEAN arrives as a boolean, SQLite's 0/1 as a number. */
function bool(row: Row, column: string): boolean {
  const value = row[column];
  return value === true || value === 1;
}

function boolOrNull(row: Row, column: string): boolean | null {
  return row[column] === null ? null : bool(row, column);
}

function json(row: Row, column: string): unknown {
  const value = row[column];
  return typeof value === "string" ? JSON.parse(value) : value;
}

/**
 * updateMetadata's merge, one level deep, alike in both stores (PostgreSQL's jsonb `||` would be too,
 * but then the two could drift): the patch wins, or with `onlyMissing` what is stored wins.
 */
export function mergeMetadata(
  stored: object,
  patch: Record<string, unknown>,
  onlyMissing: boolean | undefined,
): Record<string, unknown> {
  return onlyMissing ? { ...patch, ...stored } : { ...stored, ...patch };
}
