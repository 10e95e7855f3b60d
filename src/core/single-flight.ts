/**
 * Keyed promise coalescing: the in-process half of DESIGN.md invariant 1. The
 * cross-process half is the store's refresh claim.
 *
 * A caller that arrives while a call for the same key is in flight gets the same
 * promise (same value, or same rejection) and does not start its own. The entry
 * is removed as soon as the call settles, on success and on failure alike, so
 * the next caller after that starts afresh (and re-reads the store).
 *
 * @example
 * const flights = new SingleFlight<TokenSet>();
 * const [a, b] = await Promise.all([
 *   flights.run("T123:bot", () => refreshOnce(ref)),
 *   flights.run("T123:bot", () => refreshOnce(ref)), // not called: joins the first
 * ]);
 * a === b; // true
 */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, Promise<T>>();

  /** Runs `fn` unless a call for `key` is in flight, in which case it joins that call. */
  run(key: string, fn: () => Promise<T>): Promise<T> {
    const existing = this.#inFlight.get(key);
    if (existing !== undefined) return existing;
    let started: Promise<T>;
    try {
      started = Promise.resolve(fn());
    } catch (error) {
      // A synchronous throw behaves like a rejection, so callers have one path.
      started = Promise.reject(error);
    }
    const tracked = started.finally(() => {
      if (this.#inFlight.get(key) === tracked) this.#inFlight.delete(key);
    });
    this.#inFlight.set(key, tracked);
    return tracked;
  }

  /** True while a call for `key` is in flight. */
  has(key: string): boolean {
    return this.#inFlight.has(key);
  }

  /** How many keys are in flight. */
  get size(): number {
    return this.#inFlight.size;
  }
}
