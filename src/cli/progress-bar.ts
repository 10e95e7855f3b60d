/**
 * A one-line progress bar on stderr for bulk work. It draws only when stderr
 * is a terminal, so pipes, CI logs and `--json` consumers see nothing of it.
 */
export interface Progress {
  tick(n?: number): void;
  done(): void;
}

const WIDTH = 28;

/**
 * @param total the number of steps, or null when unknown (a counter is shown instead)
 * @example
 * const bar = startProgress("refreshing", 120);
 * for (const c of connections) { await refresh(c); bar.tick(); }
 * bar.done();
 */
export function startProgress(
  label: string,
  total: number | null,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!stream.isTTY) return { tick() {}, done() {} };
  let count = 0;
  let lastDrawMs = 0;
  const draw = (force: boolean) => {
    const now = Date.now();
    // Redrawing on every step would make a 10 000-step import slower than the work itself.
    if (!force && now - lastDrawMs < 50) return;
    lastDrawMs = now;
    const text =
      total === null || total === 0
        ? `${label}: ${count}`
        : (() => {
            const filled = Math.round((count / total) * WIDTH);
            return `${label} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${count}/${total}`;
          })();
    stream.write(`\r\u001b[2K${text}`);
  };
  draw(true);
  return {
    tick(n = 1) {
      count += n;
      draw(false);
    },
    done() {
      draw(true);
      stream.write("\n");
    },
  };
}
