import type { CompletionItem, CompletionOutcome } from "../core/ports.js";
import { checkInstant, checkJsonText, checkText } from "./store-input.js";

/** Stored, and the connection's status cannot have changed (an `active` credential stayed active). */
export const STORED_NO_CHANGE: CompletionOutcome = Object.freeze({ kind: "stored", change: null });
export const FENCED: CompletionOutcome = Object.freeze({ kind: "fenced" });

/** The single-item answer of `Store.completeRefresh`: stored or fenced, or the item's own error. */
export function storedOrThrow(outcome: CompletionOutcome | undefined): boolean {
  if (outcome === undefined) throw new Error("completeRefreshes answered no outcome");
  if (outcome.kind === "failed") throw outcome.error;
  return outcome.kind === "stored";
}

/** Throws `invalid_input` for an item either store would refuse (a fraction of a millisecond, a NUL). */
function checkCompletionItem(item: CompletionItem): void {
  checkInstant(item.nowMs, "a completion's nowMs");
  checkInstant(item.result.tokens.expiresAtMs, "a refreshed token's expiresAtMs");
  checkInstant(item.result.refreshDueAtMs, "a completion's refreshDueAtMs");
  checkInstant(item.event.atMs, "a completion event's atMs");
  checkText(item.result.tokens.tokenType, "a refreshed token's tokenType");
  checkJsonText(item.result.tokens.scopes, "a refreshed token's scopes");
  checkJsonText(item.result.providerData, "a completion's providerData");
  checkJsonText(item.event.data ?? null, "a completion event's data");
}

/**
 * Runs `write` on the items either store can keep and answers `failed` for the others. A batch is one
 * statement or one transaction: an item the database refused would take the whole batch with it, and
 * the other items' refresh tokens are spent already.
 */
export async function completeKeepable(
  items: CompletionItem[],
  write: (keepable: CompletionItem[]) => Promise<CompletionOutcome[]>,
): Promise<CompletionOutcome[]> {
  const refusals = items.map((item): unknown => {
    try {
      checkCompletionItem(item);
      return null;
    } catch (error) {
      return error;
    }
  });
  if (refusals.every((r) => r === null)) return write(items);
  const written = await write(items.filter((_, i) => refusals[i] === null));
  let next = 0;
  return items.map((_, i) => {
    const refusal = refusals[i];
    if (refusal !== null) return { kind: "failed", error: refusal };
    const outcome = written[next++];
    return outcome ?? { kind: "failed", error: new Error("the store answered fewer items than sent") };
  });
}
