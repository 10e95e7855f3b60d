import type { Store } from "../core/ports.js";

export interface PruneEventsOptions {
  /** Events per batch (each its own short transaction). */
  batchSize: number;
  /** Stop after this many batches; the next pass goes on. */
  maxBatches?: number;
  /** Checked between batches: true stops the pass (a shutdown). */
  stopped?: () => boolean;
}

/**
 * Deletes events recorded before `beforeMs` in batches until a batch finds none. A batch looks at
 * the oldest events only (Store.pruneEvents), so it may delete fewer than it could when a young
 * event sits among them (a peer's clock ahead of ours): a short batch is not the end, an empty one is.
 */
export async function pruneEventsInBatches(
  store: Pick<Store, "pruneEvents">,
  beforeMs: number,
  options: PruneEventsOptions,
): Promise<number> {
  let total = 0;
  for (let i = 0; i < (options.maxBatches ?? Number.POSITIVE_INFINITY); i++) {
    if (options.stopped?.() === true) break;
    const n = await store.pruneEvents(beforeMs, options.batchSize);
    if (n === 0) break;
    total += n;
  }
  return total;
}
