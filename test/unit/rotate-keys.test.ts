import { describe, expect, it } from "vitest";
import type { ResealBatch, Store } from "../../src/core/ports.js";
import { createSealer } from "../../src/crypto/seal.js";
import { rotateAllKeys } from "../../src/engine/rotate-keys.js";
import { rotatedAwayMarks } from "../../src/store/credential-sealing.js";

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

describe("rotatedAwayMarks", () => {
  const ring = (text: string) => createSealer(text);
  const K = (n: number) => Buffer.alloc(32, n).toString("base64");
  const seen = (entries: Array<[string, number]>) => new Map(entries);

  it("marks the ring's keys seen before the first, and a key seen before first-seen times were kept", () => {
    const sealer = ring(`k3:${K(3)},k2:${K(2)},k1:${K(1)}`);
    expect(
      rotatedAwayMarks(
        sealer,
        seen([
          ["k3", 30],
          ["k2", 20],
        ]),
      ),
    ).toEqual([
      { key: "key_rotated_away:k2", value: "k3" },
      { key: "key_rotated_away:k1", value: "k3" },
    ]);
  });

  it("marks nothing newer than the first, nor when the order is unknown", () => {
    // keys rotate run with step 2's ring: the old key first, the new one after it.
    expect(
      rotatedAwayMarks(
        ring(`k1:${K(1)},k2:${K(2)}`),
        seen([
          ["k1", 10],
          ["k2", 20],
        ]),
      ),
    ).toEqual([]);
    expect(rotatedAwayMarks(ring(`k2:${K(2)},k1:${K(1)}`), seen([["k1", 10]]))).toEqual([]);
    expect(
      rotatedAwayMarks(
        ring(`k2:${K(2)},k1:${K(1)}`),
        seen([
          ["k1", 10],
          ["k2", 10],
        ]),
      ),
    ).toEqual([]);
  });
});
