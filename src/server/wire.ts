/**
 * The HTTP API speaks snake_case JSON (DESIGN.md "Contract"); the engine speaks
 * camelCase. Every translation between the two lives here, once.
 */
import { z } from "zod";
import type { Connection, CredentialSummary, StoredEvent } from "../core/types.js";
import { STATUSES } from "../core/types.js";
import type { CheckResult } from "../engine/check.js";
import type { AccessToken } from "../engine/get-token.js";
import { ConnectionIdSchema, type ImportInput, JsonObjectSchema } from "../engine/import-input.js";

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export const KindSchema = z.enum(["bot", "user", "default"]);
export const IdParamsSchema = z.object({ id: ConnectionIdSchema }).strict();

const Token = z.string().min(1).max(8192);

/** Above this, an epoch-seconds value is really milliseconds (1e11 s is the year 5138). */
export const MAX_EPOCH_SECONDS = 1e11;
/** Below this, an epoch time is before 2001: a duration or a unit slip, not a token's expiry. */
const MIN_EPOCH_SECONDS = 1e9;

/** `expires_at` on the wire: epoch seconds or ISO 8601, with the likely slips named. */
export const ExpiresAtSchema = z.union([
  z
    .number()
    .int()
    .min(MIN_EPOCH_SECONDS, "must be epoch seconds; this is before 2001 (a lifetime belongs in expires_in)")
    .max(MAX_EPOCH_SECONDS, "must be epoch SECONDS, not milliseconds"),
  z.iso.datetime({ offset: true }),
]);
const CredentialBody = z
  .object({
    access_token: Token,
    refresh_token: Token.nullish(),
    /** ISO 8601, or epoch seconds. */
    expires_at: ExpiresAtSchema.optional(),
    expires_in: z
      .number()
      .int()
      .positive()
      .max(10 * 365 * 86_400)
      .optional(),
    scopes: z.union([z.array(z.string().max(256)).max(500), z.string().max(8192)]).optional(),
    token_type: z.string().min(1).max(64).optional(),
    provider_data: JsonObjectSchema.optional(),
  })
  .strict()
  .refine((c) => c.expires_at === undefined || c.expires_in === undefined, {
    message: "give expires_at or expires_in, not both",
  });

export const ImportBodySchema = z
  .object({
    id: ConnectionIdSchema.optional(),
    provider: z.string().min(1).max(64),
    credentials: z
      .object({
        bot: CredentialBody.optional(),
        user: CredentialBody.optional(),
        default: CredentialBody.optional(),
      })
      .strict()
      .refine((c) => Object.values(c).some((v) => v !== undefined), {
        message: "at least one credential is required",
      }),
    metadata: JsonObjectSchema.optional(),
  })
  .strict();
export type ImportBody = z.output<typeof ImportBodySchema>;

export function importInputOf(body: ImportBody): ImportInput {
  const credentials: ImportInput["credentials"] = {};
  for (const kind of ["bot", "user", "default"] as const) {
    const c = body.credentials[kind];
    if (c === undefined) continue;
    credentials[kind] = {
      accessToken: c.access_token,
      ...(c.refresh_token == null ? {} : { refreshToken: c.refresh_token }),
      ...(c.expires_at === undefined
        ? {}
        : { expiresAt: typeof c.expires_at === "number" ? c.expires_at * 1000 : new Date(c.expires_at) }),
      ...(c.expires_in === undefined ? {} : { expiresIn: c.expires_in }),
      ...(c.scopes === undefined ? {} : { scopes: c.scopes }),
      ...(c.token_type === undefined ? {} : { tokenType: c.token_type }),
      ...(c.provider_data === undefined ? {} : { providerData: c.provider_data }),
    };
  }
  return {
    ...(body.id === undefined ? {} : { id: body.id }),
    provider: body.provider,
    credentials,
    ...(body.metadata === undefined ? {} : { metadata: body.metadata }),
  };
}

/**
 * A query parameter holding a whole number in decimal digits, as a number. `z.coerce.number()` would
 * take whatever `Number()` does: "" as 0, "0x3c" as 60, "1e3" as 1000, " 60" as 60.
 */
function wholeNumber(min: number, max: number) {
  return z
    .string()
    .regex(/^\d{1,15}$/, "must be a whole number in decimal digits")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

export const ListQuerySchema = z
  .object({
    provider: z.string().min(1).max(64).optional(),
    status: z.enum(STATUSES).optional(),
    cursor: z
      .string()
      .max(512)
      .regex(/^[A-Za-z0-9_-]*$/, "is malformed")
      .optional(),
    limit: wholeNumber(1, 500).optional(),
  })
  .strict();

export const TokenQuerySchema = z
  .object({
    kind: KindSchema.optional(),
    min_ttl: wholeNumber(0, 86_400).optional(),
  })
  .strict();

export const EventsQuerySchema = z
  .object({
    limit: wholeNumber(1, 500).optional(),
    before: wholeNumber(1, Number.MAX_SAFE_INTEGER).optional(),
  })
  .strict();

export const DeleteQuerySchema = z.object({ revoke: z.enum(["true", "false"]).optional() }).strict();
/**
 * A credential named in the path: any short name, so one the connection does not hold (`admin`
 * included) is a 404 saying which it holds, as a missing resource is, not a 400.
 */
export const CredentialParamsSchema = z
  .object({ id: ConnectionIdSchema, kind: z.string().min(1).max(64) })
  .strict();
export const RefreshBodySchema = z.object({ kind: KindSchema.optional() }).strict();

export const CredentialViewSchema = z.object({
  kind: KindSchema,
  status: z.enum(STATUSES),
  reason: z.string().nullable(),
  last_error: z.string().nullable(),
  token_type: z.string(),
  scopes: z.array(z.string()),
  expires_at: z.string().nullable(),
  issued_at: z.string(),
  refreshed_at: z.string().nullable(),
  has_refresh_token: z.boolean(),
  failure_count: z.number(),
  next_attempt_at: z.string().nullable(),
  provider_data: z.record(z.string(), z.unknown()),
});
export const ConnectionViewSchema = z.object({
  id: z.string(),
  provider: z.string(),
  status: z.enum(STATUSES),
  reason: z.string().nullable(),
  reconnect_url: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  created_at: z.string(),
  updated_at: z.string(),
  credentials: z.array(CredentialViewSchema),
});
export const ConnectionListSchema = z.object({
  items: z.array(ConnectionViewSchema),
  next_cursor: z.string().nullable(),
});
export const TokenViewSchema = z.object({
  access_token: z.string(),
  token_type: z.string(),
  kind: KindSchema,
  expires_at: z.string().nullable(),
  expires_in: z.number().nullable(),
});

function credentialView(c: CredentialSummary): z.output<typeof CredentialViewSchema> {
  return {
    kind: c.kind,
    status: c.status,
    reason: c.reason,
    last_error: c.lastError,
    token_type: c.tokenType,
    scopes: c.scopes,
    expires_at: iso(c.expiresAtMs),
    issued_at: new Date(c.issuedAtMs).toISOString(),
    refreshed_at: iso(c.refreshedAtMs),
    has_refresh_token: c.hasRefreshToken,
    failure_count: c.failureCount,
    next_attempt_at: iso(c.nextAttemptAtMs),
    provider_data: c.providerData,
  };
}

/** Never a token: `Connection` holds none (CredentialSummary has no token fields). */
export function connectionView(
  c: Connection,
  reconnectUrl: (id: string, provider: string) => string | null,
): z.output<typeof ConnectionViewSchema> {
  return {
    id: c.id,
    provider: c.provider,
    status: c.status,
    reason: c.reason,
    reconnect_url: c.status === "needs_reauth" ? reconnectUrl(c.id, c.provider) : null,
    metadata: c.metadata,
    created_at: new Date(c.createdAtMs).toISOString(),
    updated_at: new Date(c.updatedAtMs).toISOString(),
    credentials: c.credentials.map(credentialView),
  };
}

// Expiry instants repeat on every call for the same token: format each once. Bounded: cleared when full.
const ISO_MEMO_LIMIT = 16_384;
const isoMemo = new Map<number, string>();

function memoIso(ms: number): string {
  let s = isoMemo.get(ms);
  if (s === undefined) {
    if (isoMemo.size >= ISO_MEMO_LIMIT) isoMemo.clear();
    s = new Date(ms).toISOString();
    isoMemo.set(ms, s);
  }
  return s;
}

/**
 * The token route's answer (TokenViewSchema), built by concatenation: the token
 * route is the hot path, and on Node 20 stringifying the object and formatting
 * the date cost more than everything else the route does.
 */
export function tokenJson(t: AccessToken, nowMs: number): string {
  const expiresAtMs = t.expiresAt === null ? null : t.expiresAt.getTime();
  const expiry =
    expiresAtMs === null
      ? '"expires_at":null,"expires_in":null'
      : `"expires_at":"${memoIso(expiresAtMs)}","expires_in":${Math.max(0, Math.floor((expiresAtMs - nowMs) / 1000))}`;
  return `{"access_token":${JSON.stringify(t.accessToken)},"token_type":${JSON.stringify(t.tokenType)},"kind":"${t.kind}",${expiry}}`;
}

/** `expiresAtMs` → `expires_at_ms`: the engine records event data in camelCase, the API speaks snake_case. */
const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function snakeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snake(k), snakeKeys(v)]));
}

export function eventView(e: StoredEvent) {
  return {
    id: e.id,
    type: e.type,
    kind: e.kind,
    reason: e.reason,
    at: new Date(e.atMs).toISOString(),
    data: snakeKeys(e.data),
  };
}

export function checkView(r: CheckResult) {
  return {
    connection_id: r.connectionId,
    status: r.status,
    credentials: r.credentials.map((c) => ({
      kind: c.kind,
      ok: c.ok,
      error: c.error,
      status: c.status,
      reason: c.reason,
    })),
  };
}

export function refreshView(
  results: Array<{ kind: string; refreshed: boolean; error: string | null; expiresAt: Date | null }>,
) {
  return {
    results: results.map((r) => ({
      kind: r.kind,
      refreshed: r.refreshed,
      error: r.error,
      expires_at: r.expiresAt === null ? null : r.expiresAt.toISOString(),
    })),
  };
}
