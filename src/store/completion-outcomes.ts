import type { CompletionOutcome } from "../core/ports.js";

/** Stored, and the connection's status cannot have changed (an `active` credential stayed active). */
export const STORED_NO_CHANGE: CompletionOutcome = Object.freeze({ kind: "stored", change: null });
export const FENCED: CompletionOutcome = Object.freeze({ kind: "fenced" });

/** The single-item answer of `Store.completeRefresh`: stored or fenced, or the item's own error. */
export function storedOrThrow(outcome: CompletionOutcome | undefined): boolean {
  if (outcome === undefined) throw new Error("completeRefreshes answered no outcome");
  if (outcome.kind === "failed") throw outcome.error;
  return outcome.kind === "stored";
}
