/**
 * Configuration: the environment of DESIGN.md's Contract, parsed once at the
 * edge and frozen (STYLE.md §5). Errors name the variable and never echo its
 * value, because most of these values are secrets.
 */
import { z } from "zod";
import { TokenwardenError } from "./core/errors.js";
import { Secret } from "./core/secret.js";
import { LOG_LEVEL_PROBLEM, type LogLevel, parseLogLevel } from "./engine/default-logger.js";

export const DEFAULT_DATABASE_URL = "sqlite:./tokenwarden.db";
export const DEFAULT_SLACK_BASE_URL = "https://slack.com";

/** `sqlite:PATH` or `postgres://…` / `postgresql://…`. */
export const DatabaseUrlSchema = z
  .string()
  .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/s, "must be sqlite:PATH or postgres://…");

/** An http(s) URL: Slack's origin, webhook targets, our public URL. */
export const HttpUrlSchema = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });

/**
 * An http(s) URL without a user name or password: Node's fetch refuses such a URL (every call to
 * Slack, every webhook would fail as a network error), and our public URL's would be copied into
 * every reconnect link, webhook and error that carries one.
 */
export const PlainHttpUrlSchema = HttpUrlSchema.refine((u) => {
  // Zod runs this on a value the URL check refused too: that one is reported already.
  const url = URL.parse(u);
  return url === null || (url.username === "" && url.password === "");
}, "must not hold a user name or password");

/**
 * Refuses a URL `createWarden` was handed (an option, or the variable standing in for it) that
 * PlainHttpUrlSchema refuses, as loadConfig refuses the server's: `config_invalid` naming the
 * setting, never the value (it may hold a password). Unset or empty passes.
 */
export function checkPlainHttpUrl(value: string | undefined, name: string): void {
  if (value === undefined || value === "") return;
  const r = PlainHttpUrlSchema.safeParse(value);
  if (!r.success) {
    throw new TokenwardenError("config_invalid", `${name} ${r.error.issues[0]?.message ?? "is not valid"}`);
  }
}

const NonEmpty = z.string().min(1, "must not be empty");

/** The Slack part of `createWarden`'s options. Strict: a misspelt key is an error, not a silent default. */
export const SlackOptionsSchema = z
  .object({
    clientId: NonEmpty,
    clientSecret: NonEmpty,
    signingSecret: NonEmpty.optional(),
    baseUrl: PlainHttpUrlSchema.optional(),
  })
  .strict();

/**
 * The serialisable part of `createWarden(options)`. Loose at the top level:
 * the engine's options also carry injected dependencies (clock, store, fetch,
 * logger) that this schema does not describe and must not strip.
 *
 * @example
 * const options = WardenOptionsSchema.parse({ database: "sqlite:./tw.db", providers: { slack: { clientId, clientSecret } } });
 */
export const WardenOptionsSchema = z
  .object({
    database: DatabaseUrlSchema.optional(),
    encryptionKey: NonEmpty.optional(),
    publicUrl: PlainHttpUrlSchema.optional(),
    providers: z.object({ slack: SlackOptionsSchema.optional() }).strict().optional(),
  })
  .loose();

export type WardenOptionsInput = z.input<typeof WardenOptionsSchema>;

/** Any case, as pino took it before this was checked (`INFO` kept working). */
const LogLevelSchema = z.string().transform((v, ctx): LogLevel => {
  const level = parseLogLevel(v);
  if (level !== null) return level;
  ctx.addIssue({ code: "custom", message: LOG_LEVEL_PROBLEM });
  return z.NEVER;
});

/**
 * Origins a `return_url` may point at: a list of http(s) URLs, separated by commas or spaces. An entry
 * that is not one is refused at startup; dropping it silently would surface only as a 400 much later.
 */
const OriginListSchema = z
  .string()
  .transform((v) => v.split(/[\s,]+/).filter((s) => s !== ""))
  .pipe(
    z.array(
      HttpUrlSchema.transform((u) => new URL(u).origin),
      { error: "must list http(s) URLs" },
    ),
  );

/** An unset variable and an empty one (`FOO=` in a .env file) mean the same: not configured. */
function unsetIfEmpty<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === "" ? undefined : v), schema);
}

/** No `.strict()`: process.env holds everything else too. */
const EnvSchema = z
  .object({
    NODE_ENV: unsetIfEmpty(z.string().default("development")),
    TOKENWARDEN_DATABASE_URL: unsetIfEmpty(DatabaseUrlSchema.default(DEFAULT_DATABASE_URL)),
    // Its format (base64 of 32 bytes, or id:key,…) is checked by the key ring; here it is only carried.
    TOKENWARDEN_ENCRYPTION_KEY: unsetIfEmpty(z.string().optional()),
    TOKENWARDEN_API_KEY: unsetIfEmpty(z.string().min(16, "must be at least 16 characters").optional()),
    TOKENWARDEN_WEBHOOK_URL: unsetIfEmpty(PlainHttpUrlSchema.optional()),
    TOKENWARDEN_WEBHOOK_SECRET: unsetIfEmpty(z.string().optional()),
    TOKENWARDEN_PUBLIC_URL: unsetIfEmpty(PlainHttpUrlSchema.optional()),
    SLACK_CLIENT_ID: unsetIfEmpty(z.string().optional()),
    SLACK_CLIENT_SECRET: unsetIfEmpty(z.string().optional()),
    SLACK_SIGNING_SECRET: unsetIfEmpty(z.string().optional()),
    SLACK_BASE_URL: unsetIfEmpty(PlainHttpUrlSchema.default(DEFAULT_SLACK_BASE_URL)),
    TOKENWARDEN_LOG_LEVEL: unsetIfEmpty(LogLevelSchema.default("warn")),
    TOKENWARDEN_RETURN_URL_ORIGINS: unsetIfEmpty(OriginListSchema.default([])),
    TOKENWARDEN_EVENT_RETENTION_DAYS: unsetIfEmpty(
      z
        .string()
        .regex(/^\d{1,5}$/, "must be a whole number of days (0 keeps events forever)")
        .transform(Number)
        .default(90),
    ),
  })
  .superRefine((env, ctx) => {
    const need = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    // DESIGN.md Contract: a generated key file is for development only; STYLE.md §4: never optional in production.
    if (env.NODE_ENV === "production" && env.TOKENWARDEN_ENCRYPTION_KEY === undefined) {
      need("TOKENWARDEN_ENCRYPTION_KEY", "is required when NODE_ENV=production");
    }
    // Webhooks are signed; an unsigned one could be forged by anyone who finds the URL.
    if (env.TOKENWARDEN_WEBHOOK_URL !== undefined && env.TOKENWARDEN_WEBHOOK_SECRET === undefined) {
      need("TOKENWARDEN_WEBHOOK_SECRET", "is required when TOKENWARDEN_WEBHOOK_URL is set");
    }
    const slackSet = [env.SLACK_CLIENT_ID, env.SLACK_CLIENT_SECRET, env.SLACK_SIGNING_SECRET].some(
      (v) => v !== undefined,
    );
    if (slackSet && env.SLACK_CLIENT_ID === undefined)
      need("SLACK_CLIENT_ID", "is required with the other SLACK_* variables");
    if (slackSet && env.SLACK_CLIENT_SECRET === undefined) {
      need("SLACK_CLIENT_SECRET", "is required with the other SLACK_* variables");
    }
  });

/** Where connections live. `url` may hold a password, so it is a `Secret`; `display` is safe to print. */
export interface DatabaseConfig {
  kind: "sqlite" | "postgres";
  url: Secret;
  display: string;
}

export interface SlackConfig {
  clientId: string;
  clientSecret: Secret;
  /** null: the Slack Events receiver is off. */
  signingSecret: Secret | null;
  baseUrl: string;
}

/** The shortest TOKENWARDEN_WEBHOOK_SECRET that also signs return_url redirects. */
export const RETURN_URL_SECRET_MIN_LENGTH = 32;

/** The parsed environment. Frozen; secrets are `Secret`s, so logging it whole leaks nothing. */
export interface Config {
  nodeEnv: string;
  isProduction: boolean;
  database: DatabaseConfig;
  /** null: development generates a key file (the key ring decides; production never gets here without one). */
  encryptionKey: Secret | null;
  /** null: generated on first start and printed once. */
  apiKey: Secret | null;
  /** null: webhooks are off. */
  webhook: { url: string; secret: Secret } | null;
  /**
   * Signs the redirects back to a return_url (TOKENWARDEN_WEBHOOK_SECRET, webhooks on or off, when
   * it is at least RETURN_URL_SECRET_MIN_LENGTH long); null: unsigned.
   */
  returnUrlSecret: Secret | null;
  /** Base of reconnect links; null when unknown. */
  publicUrl: string | null;
  /** null: Slack is not configured. */
  slack: SlackConfig | null;
  /** Of the logs, HTTP and engine alike. */
  logLevel: LogLevel;
  /** Origins (besides the public URL's) a `return_url` may point at. */
  returnUrlOrigins: readonly string[];
  /** How long `serve` keeps the event log; null keeps it forever. */
  eventRetentionMs: number | null;
}

/**
 * Describes a database URL without its password.
 *
 * @example
 * describeDatabaseUrl("postgres://app:hunter2@db:5432/tw"); // "postgres://app:***@db:5432/tw"
 */
export function describeDatabaseUrl(url: string): string {
  if (url.startsWith("sqlite:")) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "postgres://…";
  }
}

/** Joins zod issues into one line of `VARIABLE: problem`, never including the input. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`).join("; ");
}

const secretOrNull = (v: string | undefined): Secret | null => (v === undefined ? null : new Secret(v));

/**
 * Reads the configuration from an environment. Throws `TokenwardenError`
 * with code `config_invalid` naming every bad variable, never its value.
 *
 * @example
 * const config = loadConfig(process.env);
 * config.slack?.clientSecret.reveal();
 */
export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const r = EnvSchema.safeParse(env);
  if (!r.success)
    throw new TokenwardenError("config_invalid", `invalid configuration: ${formatIssues(r.error.issues)}`);
  const e = r.data;
  const databaseUrl = e.TOKENWARDEN_DATABASE_URL;
  const slack: SlackConfig | null =
    e.SLACK_CLIENT_ID !== undefined && e.SLACK_CLIENT_SECRET !== undefined
      ? Object.freeze({
          clientId: e.SLACK_CLIENT_ID,
          clientSecret: new Secret(e.SLACK_CLIENT_SECRET),
          signingSecret: secretOrNull(e.SLACK_SIGNING_SECRET),
          baseUrl: e.SLACK_BASE_URL.replace(/\/+$/, ""),
        })
      : null;
  return Object.freeze({
    nodeEnv: e.NODE_ENV,
    isProduction: e.NODE_ENV === "production",
    database: Object.freeze({
      kind: databaseUrl.startsWith("sqlite:") ? ("sqlite" as const) : ("postgres" as const),
      url: new Secret(databaseUrl),
      display: describeDatabaseUrl(databaseUrl),
    }),
    encryptionKey: secretOrNull(e.TOKENWARDEN_ENCRYPTION_KEY),
    apiKey: secretOrNull(e.TOKENWARDEN_API_KEY),
    webhook:
      e.TOKENWARDEN_WEBHOOK_URL !== undefined && e.TOKENWARDEN_WEBHOOK_SECRET !== undefined
        ? Object.freeze({ url: e.TOKENWARDEN_WEBHOOK_URL, secret: new Secret(e.TOKENWARDEN_WEBHOOK_SECRET) })
        : null,
    // Also signs the redirect back to a return_url (src/server/return-url.ts), with or without
    // webhooks; anyone can have a redirect signed, so a short secret could be guessed offline from
    // them (and then sign webhooks): one that short leaves redirects unsigned.
    returnUrlSecret:
      (e.TOKENWARDEN_WEBHOOK_SECRET?.length ?? 0) >= RETURN_URL_SECRET_MIN_LENGTH
        ? secretOrNull(e.TOKENWARDEN_WEBHOOK_SECRET)
        : null,
    publicUrl: e.TOKENWARDEN_PUBLIC_URL?.replace(/\/+$/, "") ?? null,
    slack,
    logLevel: e.TOKENWARDEN_LOG_LEVEL,
    returnUrlOrigins: Object.freeze(e.TOKENWARDEN_RETURN_URL_ORIGINS),
    eventRetentionMs:
      e.TOKENWARDEN_EVENT_RETENTION_DAYS === 0 ? null : e.TOKENWARDEN_EVENT_RETENTION_DAYS * 86_400_000,
  });
}

/**
 * Validates `createWarden`'s serialisable options with the same rules as the
 * environment; throws `config_invalid` naming the bad option, never its value.
 *
 * @example
 * parseWardenOptions({ providers: { slack: { clientId: "1.2", clientSecret: "" } } });
 * // throws: "invalid options: providers.slack.clientSecret: must not be empty"
 */
export function parseWardenOptions<T extends object>(options: T): T {
  const r = WardenOptionsSchema.safeParse(options);
  if (!r.success)
    throw new TokenwardenError("config_invalid", `invalid options: ${formatIssues(r.error.issues)}`);
  return options;
}
