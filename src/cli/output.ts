/** How the CLI prints results: JSON for machines, aligned tables for people. */

/**
 * A reader that stops early (`tokenwarden connections list --json | head`) closes the pipe, and
 * Node's default for the EPIPE that follows is an unhandled 'error' with a stack trace. The reader
 * has what it wanted, so what is still to print is dropped and the command runs to its end as it
 * would with the pipe open: exiting at once could abandon a refresh mid-call (its claim held, its
 * outcome unknown), and a long-running `emulator` or `serve` keeps serving the URL already read.
 * Any other error on the stream still fails loudly.
 */
export function dropOutputToClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
  });
}

/** Prints a value as JSON (two-space indent, trailing newline) on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Formats rows as a plain aligned table. Cells are single-line strings; the
 * last column is not padded, so long reasons do not push trailing spaces.
 *
 * @example
 * formatTable(["ID", "STATUS"], [["T1", "active"]]); // "ID  STATUS\nT1  active\n"
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join("\n")}\n`;
}

/**
 * "in 3h 12m", "5m ago": how far an instant is from now, for tables.
 *
 * @example
 * relativeTime(60_000, 0); // "in 1m"
 */
export function relativeTime(atMs: number, nowMs: number): string {
  const diff = atMs - nowMs;
  const abs = Math.abs(diff);
  const s = Math.round(abs / 1000);
  const text =
    s < 60
      ? `${s}s`
      : s < 3600
        ? `${Math.floor(s / 60)}m`
        : s < 86_400
          ? `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
          : `${Math.floor(s / 86_400)}d`;
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}
