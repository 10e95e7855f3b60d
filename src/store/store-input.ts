import { TokenwardenError } from "../core/errors.js";
import type { InstallationQuery } from "../core/ports.js";
import type { NewConnection, ProviderPause } from "../core/types.js";

/** The cursor is the last id of the previous page; opaque so its form may change. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined || cursor === "") return null;
  const lastId = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, "base64url").toString("utf8") : null;
  // Only a cursor encodeCursor could have made: anything else would reach the query as a stray id.
  if (lastId === null || lastId.includes(NUL) || encodeCursor(lastId) !== cursor) {
    throw new TokenwardenError("invalid_input", "cursor is malformed");
  }
  return lastId;
}

const NUL = "\u0000";

/**
 * PostgreSQL stores no NUL character in text or jsonb and refuses the whole statement, which would
 * reach the caller as a store failure (a 503) instead of bad input; both stores refuse it up front.
 */
export function checkText(value: string | null | undefined, what: string): void {
  if (value?.includes(NUL)) throw new TokenwardenError("invalid_input", `${what} must not contain NUL`);
}

/** checkText over every key and string of a JSON value (metadata, provider data). */
export function checkJsonText(value: unknown, what: string): void {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const v = pending.pop();
    if (typeof v === "string") checkText(v, what);
    else if (Array.isArray(v)) pending.push(...v);
    else if (typeof v === "object" && v !== null) {
      for (const [key, inner] of Object.entries(v)) {
        checkText(key, what);
        pending.push(inner);
      }
    }
  }
}

/** An epoch-ms instant both stores can keep (BIGINT; a STRICT INTEGER column on SQLite). */
export function checkInstant(value: number | null, what: string): void {
  if (value !== null && !Number.isSafeInteger(value)) {
    throw new TokenwardenError("invalid_input", `${what} must be a whole number of milliseconds`);
  }
}

/** Store.pauseProvider's input, refused before it reaches either store. */
export function checkPause(pause: ProviderPause): void {
  if (typeof pause.provider !== "string" || pause.provider === "")
    throw new TokenwardenError("invalid_input", "a pause needs its provider");
  checkText(pause.provider, "a pause's provider");
  if (typeof pause.untilMs !== "number")
    throw new TokenwardenError("invalid_input", "a pause's untilMs must be a whole number of milliseconds");
  checkInstant(pause.untilMs, "a pause's untilMs");
  if (typeof pause.error !== "string") throw new TokenwardenError("invalid_input", "a pause needs its error");
  checkText(pause.error, "a pause's error");
}

/** A list filter's text fields (users type them into query strings). */
export function checkListFilter(filter: {
  provider?: string | undefined;
  status?: string | undefined;
}): void {
  checkText(filter.provider, "provider");
  checkText(filter.status, "status");
}

/** Page sizes come from users (HTTP, CLI); a store never runs an unbounded or negative LIMIT. */
export function checkLimit(limit: number, what: string): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) {
    throw new TokenwardenError("invalid_input", `${what} must be an integer from 1 to 10000`);
  }
  return limit;
}

/**
 * claimDue's provider: required since claims are per provider (an absent one once meant "any"; a
 * caller still passing none must hear so, not find nothing due).
 */
export function checkProvider(provider: unknown): string {
  if (typeof provider !== "string" || provider === "") {
    throw new TokenwardenError("invalid_input", "claimDue needs the provider whose due credentials to claim");
  }
  return provider;
}

/**
 * findConnectionsByInstallation's query. Its ids come off the wire (a Slack event's envelope): NUL is
 * refused like everywhere else, and a query naming no installation is a caller's bug, not "none".
 */
export function checkInstallationQuery(query: InstallationQuery): {
  provider: string;
  teamId: string | null;
  enterpriseId: string | null;
  limit: number;
} {
  const { provider, teamId, enterpriseId } = query;
  if (typeof provider !== "string" || provider === "") {
    throw new TokenwardenError("invalid_input", "findConnectionsByInstallation needs a provider");
  }
  checkText(provider, "provider");
  checkText(teamId, "team id");
  checkText(enterpriseId, "enterprise id");
  // "" would match a connection whose metadata holds an empty id: no installation has one.
  const team = teamId === undefined || teamId === "" ? null : teamId;
  const enterprise = enterpriseId === undefined || enterpriseId === "" ? null : enterpriseId;
  if (team === null && enterprise === null) {
    throw new TokenwardenError(
      "invalid_input",
      "findConnectionsByInstallation needs a teamId or an enterpriseId",
    );
  }
  return { provider, teamId: team, enterpriseId: enterprise, limit: checkLimit(query.limit, "limit") };
}

export function checkNewConnection(input: NewConnection): void {
  if (input.id === "" || input.id.includes(NUL)) {
    throw new TokenwardenError("invalid_input", "connection id must be non-empty and contain no NUL");
  }
  checkText(input.provider, "provider");
  checkJsonText(input.metadata, "metadata");
  for (const c of input.credentials) {
    checkText(c.tokens.tokenType, `${c.kind} token type`);
    checkJsonText(c.tokens.scopes, `${c.kind} scopes`);
    checkJsonText(c.providerData, `${c.kind} provider data`);
  }
  const kinds = input.credentials.map((c) => c.kind);
  if (new Set(kinds).size !== kinds.length) {
    throw new TokenwardenError("invalid_input", `connection ${input.id} lists a credential kind twice`);
  }
}
