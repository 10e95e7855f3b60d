import { describe, expect, it } from "vitest";
import type { ResealBatch, Store } from "../../src/core/ports.js";
import { rotateAllKeys } from "../../src/engine/rotate-keys.js";

/** A store whose every pass re-seals nothing and finds `n` credentials it cannot open. */
function unreadableStore(n: number): Store {
  const unreadable: ResealBatch["unreadable"] = Array.from({ length: n }, (_, i) => ({
    ref: { connectionId: `T${i}`, kind: "bot" },
    keyId: i === 0 ? null : "gone",
  }));
  return { resealBatch: async () => ({ resealed: 0, unreadable, next: null }) } as unknown as Store;
}

describe("rotateAllKeys", () => {
  it("names ten credentials it could not open, counts the rest, and says a malformed value is one", async () => {
    const error = await rotateAllKeys(unreadableStore(12), 100).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "config_invalid" });
    const message = String((error as Error).message);
    expect(message).toContain("12 could not be opened with TOKENWARDEN_ENCRYPTION_KEY");
    expect(message).toContain('T0/bot (key id malformed), T1/bot (key id "gone")');
    expect(message).toContain("T9/bot");
    expect(message).not.toContain("T10/bot");
    expect(message).toContain("and 2 more");
  });
});
