/**
 * Polls `probe` until it returns a value `accept` likes, or fails at the
 * deadline with the last value seen. For effects that arrive asynchronously
 * (a PostgreSQL notification), never for time passing: use FakeClock for that.
 */
export async function eventually<T>(
  probe: () => T | Promise<T>,
  accept: (value: T) => boolean,
  options: { timeoutMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = performance.now() + (options.timeoutMs ?? 5_000);
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (performance.now() > deadline) {
      throw new Error(
        `timed out waiting for ${options.what ?? "a condition"}; last value: ${JSON.stringify(value)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
