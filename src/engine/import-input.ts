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
    providerData: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .refine((c) => c.expiresAt === undefined || c.expiresIn === undefined, {
    message: "give expiresAt or expiresIn, not both",
  });

/**
 * The path of the first string (a value or a key, at any depth) holding NUL, or null. No store can
 * keep one (PostgreSQL refuses it in text and jsonb), so it is refused with the rest of the input,
 * before anything is written: a file of several connections stays all or nothing.
 */
function pathOfNul(value: unknown, path: Array<string | number>): Array<string | number> | null {
  if (typeof value === "string") return value.includes("\u0000") ? path : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = pathOfNul(value[i], [...path, i]);
      if (found !== null) return found;
    }
    return null;
  }
  if (typeof value === "object" && value !== null && !(value instanceof Date)) {
    for (const [key, v] of Object.entries(value)) {
      if (key.includes("\u0000")) return [...path, key.replaceAll("\u0000", "\\0")];
      const found = pathOfNul(v, [...path, key]);
      if (found !== null) return found;
    }
  }
  return null;
}

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
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    const path = pathOfNul(input, []);
    if (path !== null) ctx.addIssue({ code: "custom", path, message: "must not contain NUL" });
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

export function defaultTokenType(provider: string, kind: CredentialKind): string {
  if (provider === "slack") return kind === "user" ? "user" : "bot";
  return "Bearer";
}
