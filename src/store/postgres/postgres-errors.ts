import pg from "pg";
import { TokenwardenError } from "../../core/errors.js";

/** Messages pg (and pg-pool) use for a connection that broke, never came, or stopped answering. */
const CONNECTION_TROUBLE =
  /Connection terminated|timeout exceeded when trying to connect|timeout expired|Query read timeout|connection error|pool after calling end|Client was closed/i;

/**
 * The one place PostgreSQL's errors become ours: a SQLSTATE error, a socket
 * error (ECONNREFUSED, ECONNRESET, ENOTFOUND…) or a broken pool is
 * `store_unavailable` with the driver error as `cause`. Our own errors pass
 * through; anything else is a bug and stays as it is.
 */
export function translatePgError(operation: string, error: unknown): unknown {
  if (error instanceof TokenwardenError) return error;
  if (error instanceof pg.DatabaseError) {
    // 22021 (text holding NUL, as an id or a value) and 22P05 (jsonb holding \u0000): bad input the
    // stores' own checks did not catch, not a store failure. PostgreSQL's message names no value.
    if (error.code === "22021" || error.code === "22P05") {
      return new TokenwardenError(
        "invalid_input",
        `PostgreSQL ${operation}: text must not contain a NUL character`,
        { cause: error },
      );
    }
    // 42P01 undefined_table, 3F000 invalid_schema_name: the schema was never migrated.
    const hint = error.code === "42P01" || error.code === "3F000" ? " (run `tokenwarden migrate`)" : "";
    return new TokenwardenError(
      "store_unavailable",
      `PostgreSQL ${operation} failed (SQLSTATE ${error.code}): ${error.message}${hint}`,
      { cause: error },
    );
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === "string" || CONNECTION_TROUBLE.test(error.message)) {
      return new TokenwardenError(
        "store_unavailable",
        `PostgreSQL ${operation} failed: ${code === undefined ? error.message : `${code} ${error.message}`}`,
        { cause: error },
      );
    }
  }
  return error;
}
