import type { CompletionItem, Store } from "../core/ports.js";

interface Waiting {
  item: CompletionItem;
  resolve(done: boolean): void;
  reject(error: unknown): void;
}

/**
 * Group commit for finished refreshes: completions that arrive in the same
 * turn of the event loop are handed to the store together, so on SQLite a
 * storm pays one fsync per batch instead of one per refresh. Nothing waits for
 * a timer: a batch is flushed on the next `setImmediate`, or at once when full.
 * Each item keeps its own fence and its own answer.
 */
export class CompletionBatcher {
  readonly #store: Store;
  readonly #maxBatch: number;
  #queue: Waiting[] = [];
  #scheduled = false;

  constructor(store: Store, maxBatch = 64) {
    this.#store = store;
    this.#maxBatch = maxBatch;
  }

  /** Persists one refresh's tokens (see `Store.completeRefresh`); true when its claim still held. */
  complete(item: CompletionItem): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (this.#queue.length >= this.#maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    this.#store.completeRefreshes(batch.map((w) => w.item)).then(
      (done) => {
        batch.forEach((w, i) => {
          w.resolve(done[i] === true);
        });
      },
      (error: unknown) => {
        for (const w of batch) w.reject(error);
      },
    );
  }
}
