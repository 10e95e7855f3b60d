import Database from "better-sqlite3";
import { TokenwardenError } from "../../core/errors.js";

/**
 * The one place SQLite's errors become ours: anything the driver reports
 * (SQLITE_BUSY after busy_timeout, SQLITE_CANTOPEN, I/O, a closed handle) is
 * `store_unavailable` with the driver error as `cause`. Our own errors pass
 * through; other exceptions are bugs and stay as they are.
 */
export function translateSqliteError(operation: string, error: unknown): unknown {
  if (error instanceof TokenwardenError) return error;
  if (error instanceof Database.SqliteError) {
    const hint = /no such table/.test(error.message) ? " (run `tokenwarden migrate`)" : "";
    return new TokenwardenError(
      "store_unavailable",
      `SQLite ${operation} failed (${error.code}): ${error.message}${hint}`,
      { cause: error },
    );
  }
  if (error instanceof TypeError && /database connection is not open/.test(error.message)) {
    return new TokenwardenError("store_unavailable", `SQLite ${operation} failed: the store is closed`, {
      cause: error,
    });
  }
  return error;
}
