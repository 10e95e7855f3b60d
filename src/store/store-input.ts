import { TokenwardenError } from "../core/errors.js";
import type { NewConnection } from "../core/types.js";

/** The cursor is the last id of the previous page; opaque so its form may change. */
export function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, "utf8").toString("base64url");
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined || cursor === "") return null;
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new TokenwardenError("invalid_input", "cursor is malformed");
  return Buffer.from(cursor, "base64url").toString("utf8");
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

export function checkNewConnection(input: NewConnection): void {
  if (input.id === "" || input.id.includes("\u0000")) {
    throw new TokenwardenError("invalid_input", "connection id must be non-empty and contain no NUL");
  }
  const kinds = input.credentials.map((c) => c.kind);
  if (new Set(kinds).size !== kinds.length) {
    throw new TokenwardenError("invalid_input", `connection ${input.id} lists a credential kind twice`);
  }
}
