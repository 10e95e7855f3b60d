import { z } from "zod";
import { TokenwardenError } from "../core/errors.js";
import { expiryAfter, MAX_TOKEN_LIFETIME_SECONDS } from "../core/refresh-policy.js";
import type { CredentialKind } from "../core/types.js";

/** Connection ids appear in URLs and logs: keep them printable and bounded. */
export const ConnectionIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, "must be 1–128 characters of letters, digits, '.', '_', ':' or '-'");

const TokenString = z.string().min(1).max(8192);

/** The last instant a JavaScript Date can hold (ECMA-262 §21.4.1.22). */
const MAX_DATE_MS = 8.64e15;

/** Deepest nesting of metadata and provider data (the object itself is level 1). */
const MAX_JSON_DEPTH = 32;

type JsonPath = Array<string | number>;

// String#isWellFormed is ES2024, past this project's lib; with the u flag a surrogate matches only
// when unpaired (a pair reads as one astral code point).
const LONE_SURROGATE = /\p{Surrogate}/u;
const LONE_SURROGATE_ALL = /\p{Surrogate}/gu;

/** Where a value sits: its key under its parent. A path is built only for the value reported. */
interface Place {
  parent: Place | null;
  key: string | number;
}

function pathOf(place: Place | null): JsonPath {
  const path: JsonPath = [];
  for (let p = place; p !== null; p = p.parent) path.unshift(p.key);
  return path;
}

/**
 * The first string (a value or a key, at any depth) no store can keep, with why, or null: NUL
 * (PostgreSQL refuses it in text and jsonb) or a lone UTF-16 surrogate, e.g. a name cut inside an
 * emoji (jsonb refuses it; text would silently turn it into U+FFFD). Refused with the rest of the
 * input, before anything is written, so a file of several connections stays all or nothing.
 * Iterative and linear in the input's size: it may run on input nested thousands of levels deep.
 */
function unstorableString(root: unknown): { path: JsonPath; message: string } | null {
  const why = (s: string): string | null =>
    s.includes("\u0000")
      ? "must not contain NUL"
      : LONE_SURROGATE.test(s)
        ? "must be well-formed text (it holds half of a UTF-16 surrogate pair)"
        : null;
  const stack: Array<{ value: unknown; place: Place | null }> = [{ value: root, place: null }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { value, place } = next;
    if (typeof value === "string") {
      const message = why(value);
      if (message !== null) return { path: pathOf(place), message };
    } else if (Array.isArray(value)) {
      // Pushed last to first, so the first offending element is the one reported.
      for (let i = value.length - 1; i >= 0; i--)
        stack.push({ value: value[i], place: { parent: place, key: i } });
    } else if (typeof value === "object" && value !== null && !(value instanceof Date)) {
      const entries = Object.entries(value);
      for (const [key] of entries) {
        const message = why(key);
        // The key is shown, made printable: it is the name of a field, and the path must point at it.
        if (message !== null) {
          const shown = key.replaceAll("\u0000", "\\0").replace(LONE_SURROGATE_ALL, "\uFFFD");
          return { path: [...pathOf(place), shown], message };
        }
      }
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, v] = entries[i] as [string, unknown];
        stack.push({ value: v, place: { parent: place, key } });
      }
    }
  }
  return null;
}

/** Whether JSON nests deeper than `max` levels; iterative, and stops at the first level too many. */
function nestsDeeperThan(root: unknown, max: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value: root, depth: 1 }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { value, depth } = next;
    if (typeof value !== "object" || value === null || value instanceof Date) continue;
    if (depth > max) return true;
    for (const v of Object.values(value)) stack.push({ value: v, depth: depth + 1 });
  }
  return false;
}

/**
 * A JSON object an operator attaches (metadata, provider data). Bounded in depth: SQLite refuses
 * JSON past 1000 levels, and nothing legitimate comes near 32. The message names the field only.
 */
export const JsonObjectSchema = z
  .record(z.string(), z.unknown())
  .refine((o) => !nestsDeeperThan(o, MAX_JSON_DEPTH), `must not nest deeper than ${MAX_JSON_DEPTH} levels`);

const CredentialInputSchema = z
  .object({
    accessToken: TokenString,
    refreshToken: TokenString.nullish(),
    /** A Date or epoch milliseconds. */
    expiresAt: z.union([z.date(), z.number().int().positive().max(MAX_DATE_MS)]).optional(),
    /** Seconds from now, as OAuth replies say it. */
    expiresIn: z.number().int().positive().max(MAX_TOKEN_LIFETIME_SECONDS).optional(),
    scopes: z.union([z.array(z.string().max(256)).max(500), z.string().max(8192)]).optional(),
    tokenType: z.string().min(1).max(64).optional(),
    providerData: JsonObjectSchema.optional(),
  })
  .strict()
  .refine((c) => c.expiresAt === undefined || c.expiresIn === undefined, {
    message: "give expiresAt or expiresIn, not both",
  });

export const ImportInputSchema = z
  .object({
    id: ConnectionIdSchema.optional(),
    provider: z.string().min(1).max(64),
    credentials: z
      .object({
        bot: CredentialInputSchema.optional(),
        user: CredentialInputSchema.optional(),
        default: CredentialInputSchema.optional(),
      })
      .strict()
      .refine((c) => Object.values(c).some((v) => v !== undefined), {
        message: "at least one credential is required",
      }),
    metadata: JsonObjectSchema.optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    const found = unstorableString(input);
    if (found !== null) ctx.addIssue({ code: "custom", ...found });
  });

export type ImportInput = z.input<typeof ImportInputSchema>;
export type CredentialInput = z.output<typeof CredentialInputSchema>;
export type ParsedImport = z.output<typeof ImportInputSchema>;

/** Parses untrusted input; the message names fields, never echoes a value (it may be a token). */
export function parseImportInput(input: unknown): ParsedImport {
  const result = ImportInputSchema.safeParse(input);
  if (result.success) return result.data;
  const detail = result.error.issues.map((i) => `${i.path.join(".") || "(input)"}: ${i.message}`).join("; ");
  throw new TokenwardenError("invalid_input", `invalid connection import: ${detail}`);
}

export function scopesOf(scopes: CredentialInput["scopes"]): string[] {
  if (scopes === undefined) return [];
  const list = typeof scopes === "string" ? scopes.split(/[ ,]+/) : scopes;
  return list.map((s) => s.trim()).filter((s) => s.length > 0);
}

export function expiresAtMsOf(c: CredentialInput, nowMs: number): number | null {
  if (c.expiresAt instanceof Date) return c.expiresAt.getTime();
  if (typeof c.expiresAt === "number") return c.expiresAt;
  if (c.expiresIn !== undefined) return expiryAfter(nowMs, c.expiresIn);
  return null;
}

/** An expiry this far before now is a unit mistake, not a token that expired (30 years). */
const IMPLAUSIBLY_PAST_MS = 30 * 365 * 86_400_000;

/**
 * The first credential whose expiry is decades before `nowMs`, with the error naming it, or null.
 * Epoch seconds where milliseconds are expected read as January 1970: a long-lived token would
 * import as expired (dead without a refresh token). The import refuses it, and `connections import`
 * checks it with every other entry, before anything is written.
 */
export function implausibleExpiry(
  input: Pick<ImportInput, "credentials">,
  nowMs: number,
): { kind: CredentialKind; message: string } | null {
  for (const kind of ["bot", "user", "default"] as const) {
    const c = input.credentials[kind];
    const at = c === undefined ? null : expiresAtMsOf(c, nowMs);
    if (at !== null && nowMs - at > IMPLAUSIBLY_PAST_MS) {
      return {
        kind,
        message: `credentials.${kind}.expiresAt is ${new Date(at).toISOString()}, decades ago: epoch seconds where milliseconds are expected? (give a Date, epoch milliseconds, or expiresIn)`,
      };
    }
  }
  return null;
}

export function defaultTokenType(provider: string, kind: CredentialKind): string {
  if (provider === "slack") return kind === "user" ? "user" : "bot";
  return "Bearer";
}
