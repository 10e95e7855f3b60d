import type { CompletionItem, CompletionOutcome, Store } from "../core/ports.js";

/** Stored (with the status change it caused) or fenced out; a failed write rejects instead. */
export type Completed = Exclude<CompletionOutcome, { kind: "failed" }>;

interface Waiting {
  item: CompletionItem;
  resolve(outcome: Completed): void;
  reject(error: unknown): void;
}

/**
 * Group commit for finished refreshes. Completions that arrive while a write
 * is in flight wait for it and then go to the store together: the batch grows
 * with the store's latency instead of with the event loop's turns, so a storm
 * pays one statement and one commit (one fsync on SQLite) per batch, not per
 * refresh, and a lone refresh is written at once. Nothing waits for a timer.
 * Each item keeps its own fence and its own answer.
 */
export class CompletionBatcher {
  readonly #store: Store;
  readonly #maxBatch: number;
  readonly #maxWriting: number;
  #queue: Waiting[] = [];
  #scheduled = false;
  #writing = 0;

  /**
   * @param maxBatch items per store call
   * @param maxWriting store calls in flight at once (two keep one batch filling while one commits)
   */
  constructor(store: Store, maxBatch = 256, maxWriting = 1) {
    this.#store = store;
    this.#maxBatch = maxBatch;
    this.#maxWriting = maxWriting;
  }

  /** Persists one refresh's tokens (see `Store.completeRefreshes`); rejects if its write failed. */
  complete(item: CompletionItem): Promise<Completed> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#queue.length >= this.#maxBatch) this.#flush();
      else this.#schedule();
    });
  }

  /** Flushes on the next turn, so the completions of this one are written together. */
  #schedule(): void {
    if (this.#scheduled || this.#writing >= this.#maxWriting || this.#queue.length === 0) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    while (this.#writing < this.#maxWriting && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#writing++;
      this.#store
        .completeRefreshes(batch.map((w) => w.item))
        .then(
          (outcomes) => {
            batch.forEach((w, i) => {
              const outcome = outcomes[i];
              if (outcome === undefined) w.reject(new Error("the store answered fewer items than sent"));
              else if (outcome.kind === "failed") w.reject(outcome.error);
              else w.resolve(outcome);
            });
          },
          (error: unknown) => {
            for (const w of batch) w.reject(error);
          },
        )
        .finally(() => {
          this.#writing--;
          this.#schedule();
        });
    }
  }
}
