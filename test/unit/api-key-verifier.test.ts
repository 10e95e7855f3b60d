import { describe, expect, it } from "vitest";
import { ApiKeyVerifier, sha256 } from "../../src/server/auth.js";

const KEY = "tw_0123456789abcdefghijklmnopqrstuv";

/** Wrong answers that differ from KEY in every way the fast path could get wrong. */
const WRONG = [
  undefined,
  "",
  KEY,
  `Basic ${KEY}`,
  `bearer ${KEY}`,
  "Bearer ",
  `Bearer ${KEY.slice(0, -1)}`,
  `Bearer ${KEY}x`,
  `Bearer ${KEY}\u0000`,
  `Bearer ${KEY.slice(0, -1)}w`,
  `Bearer x${KEY.slice(1)}`,
  `Bearer ${KEY.toUpperCase()}`,
  `Bearer ${"a".repeat(200)}`,
  `Bearer  ${KEY}`,
];

describe("ApiKeyVerifier", () => {
  it("refuses every wrong header before and after the right key was seen", () => {
    const v = new ApiKeyVerifier(sha256(KEY));
    for (const h of WRONG) expect(v.matches(h), String(h)).toBe(false);
    expect(v.matches(`Bearer ${KEY}`)).toBe(true); // digest path; the key is now known
    for (const h of WRONG) expect(v.matches(h), String(h)).toBe(false);
    expect(v.matches(`Bearer ${KEY}`)).toBe(true); // fast path
    expect(v.matches(`Bearer ${KEY}`)).toBe(true);
  });

  it("accepts keys the fast buffer cannot hold, and non-ASCII keys, by their digest every time", () => {
    for (const key of ["k".repeat(300), "ключ-🔑-0123456789", "x"]) {
      const v = new ApiKeyVerifier(sha256(key));
      for (let i = 0; i < 3; i++) {
        expect(v.matches(`Bearer ${key}`)).toBe(true);
        expect(v.matches(`Bearer ${key}!`)).toBe(false);
        expect(v.matches(`Bearer ${key.slice(0, -1)}`)).toBe(false);
      }
    }
  });

  it("assert() throws unauthorized with a message that never echoes what was sent", () => {
    const v = new ApiKeyVerifier(sha256(KEY));
    expect(() => v.assert("Bearer not-the-key-123")).toThrow(
      expect.objectContaining({ code: "unauthorized", message: expect.not.stringContaining("not-the-key") }),
    );
    expect(() => v.assert(`Bearer ${KEY}`)).not.toThrow();
  });
});
