import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import { deriveKeyId, generateKey, parseKeyRing } from "../../src/crypto/key-ring.js";
import { AesGcmSealer, createSealer, sealedPrefix } from "../../src/crypto/seal.js";

const K1 = generateKey();
const K2 = generateKey();
const AAD = "T123\u0000bot\u0000access";
const TOKEN = "xoxe.xoxb-1-secret-token-value";

function errorOf(fn: () => unknown): TokenwardenError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TokenwardenError) return error;
    throw error;
  }
  throw new Error("expected a TokenwardenError");
}

describe("AesGcmSealer", () => {
  it("round-trips and never contains the plaintext", () => {
    const sealer = createSealer(K1);
    const sealed = sealer.seal(TOKEN, AAD);
    expect(sealed).not.toContain(TOKEN);
    expect(sealed.startsWith(sealedPrefix(sealer.currentKeyId))).toBe(true);
    expect(sealed.split(".")).toHaveLength(5);
    expect(sealer.open(sealed, AAD)).toBe(TOKEN);
  });

  it("uses a fresh 96-bit IV per value, also across the nonce pool's refills", () => {
    const sealer = createSealer(K1);
    expect(sealer.seal(TOKEN, AAD)).not.toBe(sealer.seal(TOKEN, AAD));
    const sealed = Array.from({ length: 1_000 }, (_, i) => sealer.seal(`${TOKEN}-${i}`, AAD));
    const ivs = sealed.map((v) => v.split(".")[2] ?? "");
    expect(new Set(ivs).size).toBe(sealed.length);
    for (const iv of ivs) expect(Buffer.from(iv, "base64url")).toHaveLength(12);
    sealed.forEach((v, i) => {
      expect(sealer.open(v, AAD)).toBe(`${TOKEN}-${i}`);
    });
  });

  it("refuses a value moved to another row (wrong aad)", () => {
    const sealer = createSealer(K1);
    const sealed = sealer.seal(TOKEN, AAD);
    const error = errorOf(() => sealer.open(sealed, "T124\u0000bot\u0000access"));
    expect(error.code).toBe("config_invalid");
    expect(error.message).toMatch(/moved/);
  });

  it("refuses a tampered ciphertext, tag or iv", () => {
    const sealer = createSealer(K1);
    const parts = sealer.seal(TOKEN, AAD).split(".");
    for (const index of [2, 3, 4]) {
      const bytes = Buffer.from(parts[index] ?? "", "base64url");
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      const tampered = parts.map((p, i) => (i === index ? bytes.toString("base64url") : p)).join(".");
      expect(errorOf(() => sealer.open(tampered, AAD)).code).toBe("config_invalid");
    }
    expect(errorOf(() => sealer.open("not-sealed", AAD)).message).toMatch(/not a v1 sealed value/);
  });

  it("opens with every key of the ring and seals with the first", () => {
    const old = new AesGcmSealer(parseKeyRing(`old:${K1}`));
    const sealedWithOld = old.seal(TOKEN, AAD);
    const rotated = new AesGcmSealer(parseKeyRing(`new:${K2},old:${K1}`));
    expect(rotated.currentKeyId).toBe("new");
    expect(rotated.open(sealedWithOld, AAD)).toBe(TOKEN);
    expect(rotated.seal(TOKEN, AAD).startsWith("v1.new.")).toBe(true);
    expect(rotated.needsReseal(sealedWithOld)).toBe(true);
    expect(rotated.needsReseal(rotated.seal(TOKEN, AAD))).toBe(false);
  });

  it("names an unknown key id without revealing anything", () => {
    const sealed = new AesGcmSealer(parseKeyRing(`gone:${K1}`)).seal(TOKEN, AAD);
    const error = errorOf(() => new AesGcmSealer(parseKeyRing(`new:${K2}`)).open(sealed, AAD));
    expect(error.message).toContain('"gone"');
    expect(error.message).toContain("TOKENWARDEN_ENCRYPTION_KEY");
    expect(error.message).not.toContain(K1);
    expect(error.message).not.toContain(K2);
  });

  it("fails to open when the same id now holds a different key", () => {
    const sealed = new AesGcmSealer(parseKeyRing(`k:${K1}`)).seal(TOKEN, AAD);
    expect(errorOf(() => new AesGcmSealer(parseKeyRing(`k:${K2}`)).open(sealed, AAD)).code).toBe(
      "config_invalid",
    );
  });
});

describe("parseKeyRing", () => {
  it("derives a stable id for a single key", () => {
    const [key] = parseKeyRing(K1);
    expect(key?.id).toMatch(/^[0-9a-f]{8}$/);
    expect(key?.id).toBe(deriveKeyId(Buffer.from(K1, "base64")));
    expect(parseKeyRing(` ${K1}\n`)[0]?.id).toBe(key?.id);
  });

  it("accepts base64url and unpadded keys", () => {
    const raw = randomBytes(32);
    expect(parseKeyRing(raw.toString("base64url"))[0]?.key.equals(raw)).toBe(true);
  });

  it("keeps the derived id of a bare key listed after a new one, so a single-key setup can rotate", () => {
    const single = parseKeyRing(K2);
    const ring = parseKeyRing(`new:${K1},${K2}`);
    expect(ring.map((k) => k.id)).toEqual(["new", single[0]?.id]);
  });

  it("accepts one key under two ids after the first: it only reads, and a new key first rotates it away", () => {
    const ring = parseKeyRing(`k3:${K2},k2:${K1},${K1}`);
    expect(ring.map((k) => k.id)).toEqual(["k3", "k2", parseKeyRing(K1)[0]?.id]);
  });

  it("generates 32-byte keys", () => {
    expect(Buffer.from(generateKey(), "base64")).toHaveLength(32);
  });

  const bad: Array<[string, string, RegExp]> = [
    ["empty", "", /is empty/],
    ["short key", randomBytes(16).toString("base64"), /not base64 of exactly 32 bytes/],
    ["long key", randomBytes(48).toString("base64"), /not base64 of exactly 32 bytes/],
    ["not base64", `${"!".repeat(43)}=`, /not base64/],
    ["bad entry without id", `a:${K1},${K2.slice(0, 20)}`, /entry 2 is not base64/],
    ["bad id", `a.b:${K1}`, /entry 1 has an invalid key id/],
    ["key pasted as id", `${K1}:${K2}`, /entry 1 has an invalid key id/],
    ["duplicate id", `a:${K1},a:${K2}`, /key id "a" appears twice/],
    ["bad second key", `a:${K1},b:${K2.slice(0, 20)}`, /entry 2 \(key id "b"\) is not base64/],
    // A rotation "to" the key already in use changes nothing, and the old entry then looks retirable.
    [
      "one key under two ids",
      `k2:${K1},k1:${K1}`,
      /entries 1 \(key id "k2"\) and 2 \(key id "k1"\) hold the same key/,
    ],
    [
      "one key with and without an id",
      `k2:${K1},${K1}`,
      /entries 1 \(key id "k2"\) and 2 \(key id "[0-9a-f]{8}"\) hold the same key/,
    ],
    [
      "one key spelled two ways",
      `k2:${K1},k1:${Buffer.from(K1, "base64").toString("base64url")}`,
      /hold the same key/,
    ],
  ];
  for (const [name, value, message] of bad) {
    it(`rejects ${name} with a message that names the variable and hides the key`, () => {
      const error = errorOf(() => parseKeyRing(value));
      expect(error.code).toBe("config_invalid");
      expect(error.message).toMatch(message);
      expect(error.message).toMatch(/^invalid configuration: TOKENWARDEN_ENCRYPTION_KEY: /);
      for (const secret of [K1, K2, K2.slice(0, 20), value].filter((s) => s.length > 8)) {
        expect(error.message).not.toContain(secret);
      }
    });
  }
});
