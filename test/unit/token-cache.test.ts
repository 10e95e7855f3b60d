import { describe, expect, it } from "vitest";
import { Secret } from "../../src/core/secret.js";
import type { CredentialKind } from "../../src/core/types.js";
import { type CachedToken, setBounded, TokenCache } from "../../src/engine/token-cache.js";

const entry = (token: string, kind: CredentialKind = "bot"): CachedToken => ({
  accessToken: new Secret(token),
  tokenType: kind,
  kind,
  provider: "slack",
  expiresAtMs: null,
  marginMs: 0,
  halfLifetimeMs: 0,
  refreshDeferredUntilMs: Number.NEGATIVE_INFINITY,
  stamp: 0,
});

describe("TokenCache", () => {
  it("keeps at most its bound of connections, dropping the one added first", () => {
    const cache = new TokenCache(3);
    for (const id of ["T1", "T2", "T3"]) cache.set({ connectionId: id, kind: "bot" }, entry(`xoxb-${id}`));
    // Another kind of a cached connection, or a new token for it, takes no new place.
    cache.set({ connectionId: "T1", kind: "user" }, entry("xoxp-T1", "user"));
    cache.set({ connectionId: "T2", kind: "bot" }, entry("xoxb-T2-new"));
    expect(cache.size).toBe(3);
    cache.set({ connectionId: "T4", kind: "bot" }, entry("xoxb-T4"));
    expect(cache.size).toBe(3);
    expect(cache.get("T1", "bot")).toBeUndefined();
    expect(cache.get("T1", "user")).toBeUndefined();
    expect(cache.get("T2", "bot")?.accessToken.reveal()).toBe("xoxb-T2-new");
    expect(cache.get("T4", "bot")?.accessToken.reveal()).toBe("xoxb-T4");
    // An evicted connection comes back when read again.
    cache.set({ connectionId: "T1", kind: "bot" }, entry("xoxb-T1"));
    expect(cache.get("T1", "bot")?.accessToken.reveal()).toBe("xoxb-T1");
    expect(cache.get("T2", "bot")).toBeUndefined();
    expect(cache.size).toBe(3);
  });

  it("holds a hundred thousand connections by default", () => {
    const cache = new TokenCache();
    for (let i = 0; i <= 100_000; i++) cache.set({ connectionId: `T${i}`, kind: "bot" }, entry("x"));
    expect(cache.size).toBe(100_000);
    expect(cache.get("T0", "bot")).toBeUndefined();
    expect(cache.get("T100000", "bot")).toBeDefined();
  });

  it("setBounded replaces a key in place and drops the first added for a new one", () => {
    const map = new Map<string, number>();
    setBounded(map, "a", 1, 2);
    setBounded(map, "b", 2, 2);
    setBounded(map, "a", 3, 2);
    expect([...map]).toEqual([
      ["a", 3],
      ["b", 2],
    ]);
    setBounded(map, "c", 4, 2);
    expect([...map]).toEqual([
      ["b", 2],
      ["c", 4],
    ]);
  });
});
