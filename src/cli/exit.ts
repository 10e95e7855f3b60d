import { TokenwardenError } from "../core/errors.js";

/** Exit codes: 0 ok, 1 problem found or operation failed, 2 bad usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Prints one clear line (a stack trace only with --verbose) and returns the exit code. */
export function reportFailure(error: unknown, verbose: boolean): number {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`tokenwarden: ${message}\n`);
  if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  if (
    error instanceof TokenwardenError &&
    (error.code === "invalid_input" || error.code === "config_invalid")
  ) {
    return EXIT.usage;
  }
  return EXIT.failed;
}
