import { describe, expect, it } from "vitest";
import type { CompletionItem, CompletionOutcome, Store } from "../../src/core/ports.js";
import { CompletionBatcher } from "../../src/engine/completion-batcher.js";

/** Only the one method the batcher calls; every call is recorded. */
function recordingStore(answer: (items: CompletionItem[]) => Promise<CompletionOutcome[]>) {
  const calls: CompletionItem[][] = [];
  const store = {
    completeRefreshes: (items: CompletionItem[]) => {
      calls.push(items);
      return answer(items);
    },
  } as unknown as Store;
  return { store, calls };
}

const STORED: CompletionOutcome = { kind: "stored", change: null };
const FENCED: CompletionOutcome = { kind: "fenced" };

const item = (claimId: string): CompletionItem =>
  ({
    claim: { claimId, owner: "o", ref: { connectionId: claimId, kind: "bot" } },
  }) as unknown as CompletionItem;

describe("CompletionBatcher (group commit of finished refreshes)", () => {
  it("hands completions of one event-loop turn to the store together, each with its own answer", async () => {
    const { store, calls } = recordingStore(async (items) =>
      items.map((i) => (i.claim.claimId === "fenced" ? FENCED : STORED)),
    );
    const batcher = new CompletionBatcher(store);
    const answers = await Promise.all([
      batcher.complete(item("a")),
      batcher.complete(item("fenced")),
      batcher.complete(item("b")),
    ]);
    expect(answers).toEqual([STORED, FENCED, STORED]);
    expect(calls.map((c) => c.map((i) => i.claim.claimId))).toEqual([["a", "fenced", "b"]]);
  });

  it("flushes at once when a batch is full", async () => {
    const { store, calls } = recordingStore(async (items) => items.map(() => STORED));
    const batcher = new CompletionBatcher(store, 2);
    await Promise.all([
      batcher.complete(item("a")),
      batcher.complete(item("b")),
      batcher.complete(item("c")),
    ]);
    expect(calls.map((c) => c.length)).toEqual([2, 1]);
  });

  it("group commit: what arrives while a write is in flight goes to the store together after it", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { store, calls } = recordingStore(async (items) => {
      if (calls.length === 1) await held;
      return items.map(() => STORED);
    });
    const batcher = new CompletionBatcher(store);
    const first = batcher.complete(item("a"));
    await new Promise((resolve) => setImmediate(resolve));
    const later = [batcher.complete(item("b")), batcher.complete(item("c"))];
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.map((c) => c.map((i) => i.claim.claimId))).toEqual([["a"]]);
    release();
    expect(await Promise.all([first, ...later])).toEqual([STORED, STORED, STORED]);
    expect(calls.map((c) => c.map((i) => i.claim.claimId))).toEqual([["a"], ["b", "c"]]);
  });

  it("rejects every completion of a batch the store failed to write, and keeps working after", async () => {
    let fail = true;
    const { store } = recordingStore(async (items) => {
      if (fail) throw new Error("store_unavailable");
      return items.map(() => STORED);
    });
    const batcher = new CompletionBatcher(store);
    const results = await Promise.allSettled([batcher.complete(item("a")), batcher.complete(item("b"))]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    await expect(batcher.complete(item("c"))).resolves.toEqual(STORED);
  });

  it("rejects only the item whose own write failed; the others of its batch keep their answers", async () => {
    const failure = new Error("deadlock detected");
    const { store } = recordingStore(async (items) =>
      items.map((i) => (i.claim.claimId === "bad" ? { kind: "failed", error: failure } : STORED)),
    );
    const batcher = new CompletionBatcher(store);
    const results = await Promise.allSettled([
      batcher.complete(item("a")),
      batcher.complete(item("bad")),
      batcher.complete(item("b")),
    ]);
    expect(results).toEqual([
      { status: "fulfilled", value: STORED },
      { status: "rejected", reason: failure },
      { status: "fulfilled", value: STORED },
    ]);
  });
});
