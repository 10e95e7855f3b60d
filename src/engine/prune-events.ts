import type { Store } from "../core/ports.js";

export interface PruneEventsOptions {
  /** Events per batch (each its own short transaction). */
  batchSize: number;
  /** Stop after this many batches; the next pass goes on. */
  maxBatches?: number;
  /** Checked between batches: true stops the pass (a shutdown). */
  stopped?: () => boolean;
}

/** Short batches in a row that end a run (see pruneEventsInBatches). */
const SHORT_BATCHES_TO_STOP = 3;

/**
 * Deletes events recorded before `beforeMs` in batches, until a batch finds none or several in a
 * row come back short. A batch looks at the oldest events only (Store.pruneEvents), so it deletes
 * fewer than it could when a young event sits among them (a peer's clock ahead of ours): one short
 * batch is not the end. Many in a row are: young events fill the oldest window (they age out, and a
 * later run goes on), or writers keep adding events the cut-off already covers (a cut-off at or past
 * now), and going on would never end.
 */
export async function pruneEventsInBatches(
  store: Pick<Store, "pruneEvents">,
  beforeMs: number,
  options: PruneEventsOptions,
): Promise<number> {
  let total = 0;
  let short = 0;
  for (let i = 0; i < (options.maxBatches ?? Number.POSITIVE_INFINITY); i++) {
    if (options.stopped?.() === true) break;
    const n = await store.pruneEvents(beforeMs, options.batchSize);
    if (n === 0) break;
    total += n;
    short = n < options.batchSize ? short + 1 : 0;
    if (short >= SHORT_BATCHES_TO_STOP) break;
  }
  return total;
}
