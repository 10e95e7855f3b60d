/**
 * `fn` over `items`, at most `limit` calls at once, results in the items' order. A rejection starts
 * no new call and rejects the whole once the calls in flight settle (a caller that wants every
 * item's outcome catches inside `fn`).
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        results[i] = await fn(items[i] as T);
      } catch (error) {
        failed = true; // no new call starts; those in flight are awaited
        throw error;
      }
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s) => s.status === "rejected");
  if (rejected !== undefined) throw rejected.reason;
  return results;
}
