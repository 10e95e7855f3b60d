import { TokenwardenError } from "../core/errors.js";
import type { ResealBatch, Store } from "../core/ports.js";
import { ENCRYPTION_KEY_VARIABLE } from "../crypto/key-ring.js";

/** How many unreadable credentials the error names; the count covers the rest. */
const NAMED = 10;

/**
 * Re-seals every credential under the ring's current key: passes in key order until one re-seals
 * nothing, since a row written under an old key behind a pass (by an instance still on the previous
 * ring) is only caught by the next. A credential that does not open is passed over, never retried
 * within a pass; if any remain, this throws once everything else is re-sealed.
 */
export async function rotateAllKeys(
  store: Store,
  batchSize: number,
  onProgress?: (done: number) => void,
): Promise<number> {
  let total = 0;
  for (;;) {
    let resealedInPass = 0;
    const unreadable: ResealBatch["unreadable"] = [];
    let after: ResealBatch["next"] = null;
    do {
      const batch = await store.resealBatch(batchSize, after);
      resealedInPass += batch.resealed;
      unreadable.push(...batch.unreadable);
      if (batch.resealed > 0) {
        total += batch.resealed;
        onProgress?.(total);
      }
      after = batch.next;
    } while (after !== null);
    if (resealedInPass > 0) continue;
    if (unreadable.length === 0) return total;
    const named = unreadable
      .slice(0, NAMED)
      .map(
        (u) =>
          `${u.ref.connectionId}/${u.ref.kind} (key id ${u.keyId === null ? "malformed" : `"${u.keyId}"`})`,
      )
      .join(", ");
    const more = unreadable.length > NAMED ? ` and ${unreadable.length - NAMED} more` : "";
    throw new TokenwardenError(
      "config_invalid",
      `re-encrypted ${total} credential(s), but ${unreadable.length} could not be opened with ${ENCRYPTION_KEY_VARIABLE} and keep their old key: ${named}${more}. ` +
        "Put the key they name back in the ring and rotate again, or reconnect (or delete) those connections; until then do not retire that key",
    );
  }
}
