/**
 * What `connections import` accepts, turned into the library's import shape:
 * our JSON (camelCase as `connections.import` takes it, or snake_case as the
 * HTTP API takes it) and `@slack/oauth` `Installation` exports (slack-api.md
 * §7.1; expiries there are epoch SECONDS). One object or an array. Everything
 * is validated before anything is imported; errors name the field, never a value.
 *
 * Expiry units follow the form: snake_case `expires_at` is epoch seconds or
 * ISO 8601, as the HTTP API reads it (src/server/wire.ts); camelCase
 * `expiresAt` is epoch milliseconds, as `connections.import` reads it. A number
 * in the wrong unit for its form is refused, not read as a date decades away.
 */
import { z } from "zod";
import { TokenwardenError } from "../core/errors.js";
import type { CredentialKind } from "../core/types.js";
import { type ImportInput, implausibleExpiry, parseImportInput } from "../engine/import-input.js";
import { installationMetadata } from "../providers/slack/installation-metadata.js";
import { ExpiresAtSchema, MAX_EPOCH_SECONDS } from "../server/wire.js";

const SnakeCredential = z
  .object({
    access_token: z.string().min(1),
    refresh_token: z.string().min(1).nullish(),
    /** Epoch seconds, or an ISO 8601 date: the HTTP API's rule. */
    expires_at: ExpiresAtSchema.optional(),
    expires_in: z.number().int().positive().optional(),
    scopes: z.union([z.array(z.string()), z.string()]).optional(),
    scope: z.string().optional(),
    token_type: z.string().min(1).optional(),
    provider_data: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const SnakeConnection = z
  .object({
    id: z.string().optional(),
    provider: z.string(),
    credentials: z.record(z.string(), SnakeCredential),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/** Epoch seconds, as @slack/oauth stores them (`expiresAt = now + expires_in`). */
const EpochSeconds = z
  .number()
  .int()
  .positive()
  .max(99_999_999_999, "must be epoch SECONDS (as @slack/oauth stores it), not milliseconds");

const SlackInstallation = z
  .object({
    team: z
      .object({ id: z.string().min(1), name: z.string().optional() })
      .loose()
      .nullish(),
    enterprise: z
      .object({ id: z.string().min(1), name: z.string().optional() })
      .loose()
      .nullish(),
    isEnterpriseInstall: z.boolean().optional(),
    appId: z.string().optional(),
    bot: z
      .object({
        token: z.string().min(1),
        refreshToken: z.string().min(1).optional(),
        expiresAt: EpochSeconds.optional(),
        scopes: z.array(z.string()).optional(),
        id: z.string().optional(),
        userId: z.string().optional(),
      })
      .loose()
      .optional(),
    user: z
      .object({
        token: z.string().min(1).optional(),
        refreshToken: z.string().min(1).optional(),
        expiresAt: EpochSeconds.optional(),
        scopes: z.array(z.string()).nullish(),
        id: z.string().optional(),
      })
      .loose()
      .optional(),
  })
  .loose();

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function fail(where: string, issues: readonly z.core.$ZodIssue[]): never {
  const detail = issues
    .map((i) => `${[where, ...i.path.map(String)].filter((s) => s !== "").join(".")}: ${i.message}`)
    .join("; ");
  throw new TokenwardenError("invalid_input", detail);
}

function fromInstallation(raw: Obj, where: string): ImportInput {
  const r = SlackInstallation.safeParse(raw);
  if (!r.success) fail(where, r.error.issues);
  const i = r.data;
  const org = i.isEnterpriseInstall === true;
  const id = org ? i.enterprise?.id : (i.team?.id ?? i.enterprise?.id);
  if (id === undefined) {
    throw new TokenwardenError(
      "invalid_input",
      `${where}: team.id (or enterprise.id for an org install) is required`,
    );
  }
  const credentials: ImportInput["credentials"] = {};
  if (i.bot !== undefined) {
    credentials.bot = {
      accessToken: i.bot.token,
      ...(i.bot.refreshToken === undefined ? {} : { refreshToken: i.bot.refreshToken }),
      ...(i.bot.expiresAt === undefined ? {} : { expiresAt: i.bot.expiresAt * 1000 }),
      ...(i.bot.scopes === undefined ? {} : { scopes: i.bot.scopes }),
      // As the install callback records them (the client id aside: an export does not name the app's
      // client, and the first refresh records it), plus the bot's id, which a health check adds anyway.
      providerData: {
        bot_user_id: i.bot.userId ?? null,
        ...(i.bot.id === undefined ? {} : { bot_id: i.bot.id }),
      },
    };
  }
  if (i.user?.token !== undefined) {
    credentials.user = {
      accessToken: i.user.token,
      ...(i.user.refreshToken === undefined ? {} : { refreshToken: i.user.refreshToken }),
      ...(i.user.expiresAt === undefined ? {} : { expiresAt: i.user.expiresAt * 1000 }),
      ...(i.user.scopes ? { scopes: i.user.scopes } : {}),
      providerData: { user_id: i.user.id ?? null },
    };
  }
  if (credentials.bot === undefined && credentials.user === undefined) {
    throw new TokenwardenError("invalid_input", `${where}: an installation needs bot.token or user.token`);
  }
  // What the install callback stores for the same install: events, reinstalls, reconnects and the
  // stores' lookups read these keys. An org-wide install has no workspace of its own (Slack's `team`
  // is null there), whatever an export holds.
  const metadata = installationMetadata({
    teamId: org ? null : (i.team?.id ?? null),
    teamName: org ? null : (i.team?.name ?? null),
    enterpriseId: i.enterprise?.id ?? null,
    enterpriseName: i.enterprise?.name ?? null,
    isEnterpriseInstall: org,
    appId: i.appId ?? null,
    authedUserId: i.user?.id ?? null,
    botUserId: i.bot?.userId ?? null,
  });
  return { id, provider: "slack", credentials, metadata };
}

function fromSnake(raw: Obj, where: string): ImportInput {
  const r = SnakeConnection.safeParse(raw);
  if (!r.success) fail(where, r.error.issues);
  const credentials: Obj = {};
  for (const [kind, c] of Object.entries(r.data.credentials)) {
    const scopes = c.scopes ?? c.scope;
    credentials[kind] = {
      accessToken: c.access_token,
      ...(c.refresh_token == null ? {} : { refreshToken: c.refresh_token }),
      ...(c.expires_at === undefined
        ? {}
        : { expiresAt: typeof c.expires_at === "number" ? c.expires_at * 1000 : Date.parse(c.expires_at) }),
      ...(c.expires_in === undefined ? {} : { expiresIn: c.expires_in }),
      ...(scopes === undefined ? {} : { scopes }),
      ...(c.token_type === undefined ? {} : { tokenType: c.token_type }),
      ...(c.provider_data === undefined ? {} : { providerData: c.provider_data }),
    };
  }
  return {
    ...(r.data.id === undefined ? {} : { id: r.data.id }),
    provider: r.data.provider,
    credentials: credentials as ImportInput["credentials"],
    ...(r.data.metadata === undefined ? {} : { metadata: r.data.metadata }),
  };
}

/** Which format one entry is in: an installation has `bot`/`user` with `token`; ours has `credentials`. */
export function detectFormat(raw: Obj): "installation" | "snake_case" | "library" {
  if (!("credentials" in raw) && ("bot" in raw || "user" in raw || "team" in raw || "enterprise" in raw)) {
    return "installation";
  }
  const creds = raw["credentials"];
  if (isObj(creds) && Object.values(creds).some((c) => isObj(c) && "access_token" in c)) return "snake_case";
  return "library";
}

/** The providers an import may target in this run, and the credential kinds each holds. */
export type ImportTargets = Readonly<Record<string, readonly CredentialKind[]>>;

/** Slack installations hold a bot and a user credential; `default` is for RFC 6749 providers. */
export const SLACK_KINDS: readonly CredentialKind[] = ["bot", "user"];

const at = (where: string, path: string): string => [where, path].filter((p) => p !== "").join(".");

/** The import would fail at write time for these: refuse them now, before anything is written. */
function checkTarget(
  parsed: ReturnType<typeof parseImportInput>,
  where: string,
  targets: ImportTargets,
): void {
  const kinds = Object.hasOwn(targets, parsed.provider) ? targets[parsed.provider] : undefined;
  if (kinds === undefined) {
    const configured = Object.keys(targets);
    throw new TokenwardenError(
      "invalid_input",
      parsed.provider === "slack"
        ? `${at(where, "provider")}: slack is not configured: set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (or --client-id / --client-secret)`
        : `${at(where, "provider")}: "${parsed.provider}" is not a provider this CLI can import into (configured: ${configured.length === 0 ? "none" : configured.join(", ")})`,
    );
  }
  for (const kind of ["bot", "user", "default"] as const) {
    if (parsed.credentials[kind] !== undefined && !kinds.includes(kind)) {
      throw new TokenwardenError(
        "invalid_input",
        `${at(where, `credentials.${kind}`)}: a ${parsed.provider} connection holds ${kinds.join(" and ")} credentials, not ${kind}`,
      );
    }
  }
}

/** The camelCase form's `expiresAt` is epoch ms; a seconds value there would read as early 1970. */
function checkLibraryExpiries(parsed: ReturnType<typeof parseImportInput>, where: string): void {
  for (const kind of ["bot", "user", "default"] as const) {
    const expiresAt = parsed.credentials[kind]?.expiresAt;
    if (typeof expiresAt === "number" && expiresAt < MAX_EPOCH_SECONDS) {
      throw new TokenwardenError(
        "invalid_input",
        `${at(where, `credentials.${kind}.expiresAt`)}: must be epoch MILLISECONDS in the camelCase form; this looks like seconds (use expires_at for seconds)`,
      );
    }
  }
}

export interface ParseImportOptions {
  /** When given, every entry's provider must be one of these, with kinds it holds. */
  targets?: ImportTargets;
  /** The clock the import will run on (default: now), for the expiries it would refuse. */
  nowMs?: number;
  /** Told, once the whole input is valid, of what is imported as given but will not work as meant. */
  onWarning?: (message: string) => void;
}

/** Why a key tokenwarden reads on a Slack connection matters, for a warning about its camelCase twin. */
const FINDS_BY_ID = "Slack's events and a plain reinstall find a connection under an id of your own by it";
const TELLS_OWNER = "a plain reinstall tells whose connection this is by it";
const REVOKED_BY = "a tokens_revoked event reaches the credential by it";

/** The keys read on a Slack connection's metadata, by the camelCase spelling an import may use instead. */
const READ_METADATA: Readonly<Record<string, readonly [string, string]>> = {
  teamId: ["team_id", FINDS_BY_ID],
  enterpriseId: ["enterprise_id", FINDS_BY_ID],
  appId: ["app_id", TELLS_OWNER],
  authedUserId: ["authed_user_id", TELLS_OWNER],
  botUserId: ["bot_user_id", REVOKED_BY],
};

/** The same for a Slack credential's provider data. */
const READ_PROVIDER_DATA: Readonly<Record<string, readonly [string, string]>> = {
  botUserId: ["bot_user_id", REVOKED_BY],
  userId: ["user_id", REVOKED_BY],
};

/**
 * Our two forms store metadata and provider data as given; on a Slack connection tokenwarden reads
 * snake_case keys there, and a camelCase twin (`teamId`, the natural spelling in the camelCase form)
 * is read by nothing. Not refused (it is the operator's data), but named.
 */
function camelCaseTwins(raw: Obj, format: "snake_case" | "library", where: string): string[] {
  if (raw["provider"] !== "slack") return [];
  const found: string[] = [];
  const look = (o: unknown, path: string, keys: typeof READ_METADATA) => {
    if (!isObj(o)) return;
    for (const [camel, [snake, why]] of Object.entries(keys)) {
      if (Object.hasOwn(o, camel) && !Object.hasOwn(o, snake))
        found.push(
          `${at(where, `${path}.${camel}`)}: stored as given, but tokenwarden reads ${snake}: ${why}`,
        );
    }
  };
  look(raw["metadata"], "metadata", READ_METADATA);
  const credentials = raw["credentials"];
  const dataKey = format === "snake_case" ? "provider_data" : "providerData";
  if (isObj(credentials)) {
    for (const [kind, c] of Object.entries(credentials))
      if (isObj(c)) look(c[dataKey], `credentials.${kind}.${dataKey}`, READ_PROVIDER_DATA);
  }
  return found;
}

/**
 * Parses an import file's text into validated import inputs, all or nothing.
 *
 * @example
 * parseImportFile('[{"team":{"id":"T1"},"bot":{"token":"xoxb-…","scopes":[]}}]', { targets: { slack: SLACK_KINDS } }); // [{ id: "T1", provider: "slack", … }]
 */
export function parseImportFile(text: string, options: ParseImportOptions = {}): ImportInput[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    // JSON.parse messages quote the input near the error, which may be a token: say where, not what.
    const at = /position (\d+)/.exec(String(error))?.[1];
    throw new TokenwardenError(
      "invalid_input",
      `the input is not valid JSON${at === undefined ? "" : ` (at character ${at})`}`,
    );
  }
  const list = Array.isArray(data) ? data : [data];
  if (list.length === 0) throw new TokenwardenError("invalid_input", "the input is an empty array");
  const seen = new Set<string>();
  const warnings: string[] = [];
  const parsedList = list.map((raw, index) => {
    const where = Array.isArray(data) ? `[${index}]` : "";
    if (!isObj(raw)) throw new TokenwardenError("invalid_input", `${where || "(input)"}: must be an object`);
    const format = detectFormat(raw);
    const input =
      format === "installation"
        ? fromInstallation(raw, where)
        : format === "snake_case"
          ? fromSnake(raw, where)
          : raw;
    let parsed: ReturnType<typeof parseImportInput>;
    try {
      parsed = parseImportInput(input);
    } catch (error) {
      const message =
        error instanceof Error ? error.message.replace(/^invalid connection import: /, "") : String(error);
      throw new TokenwardenError("invalid_input", `${where ? `${where}: ` : ""}${message}`);
    }
    if (format === "library") checkLibraryExpiries(parsed, where);
    if (format !== "installation") warnings.push(...camelCaseTwins(raw, format, where));
    // connections.import refuses it too, but only when its turn comes, after the entries before it.
    const implausible = implausibleExpiry(parsed, options.nowMs ?? Date.now());
    if (implausible !== null) {
      throw new TokenwardenError("invalid_input", `${where ? `${where}.` : ""}${implausible.message}`);
    }
    if (options.targets !== undefined) checkTarget(parsed, where, options.targets);
    if (parsed.id !== undefined) {
      if (seen.has(parsed.id))
        throw new TokenwardenError("invalid_input", `${where}: id ${parsed.id} appears twice`);
      seen.add(parsed.id);
    }
    return parsed;
  });
  for (const warning of warnings) options.onWarning?.(warning);
  return parsedList;
}
