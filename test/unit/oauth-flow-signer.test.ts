import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { EncryptionKey } from "../../src/crypto/key-ring.js";
import { type FlowPayload, OAuthStateSigner } from "../../src/server/oauth-flow.js";

const A: EncryptionKey = { id: "a", key: randomBytes(32) };
const B: EncryptionKey = { id: "b", key: randomBytes(32) };
const NOW = 1_800_000_000_000;
const payload: FlowPayload = { use: "state", sid: "sid-0123456789", cid: "T1", ret: null, exp: NOW + 60_000 };

describe("OAuthStateSigner (keys derived from the encryption key ring)", () => {
  it("verifies what any process with the same ring signed", () => {
    const token = OAuthStateSigner.fromKeyRing([A]).sign(payload);
    expect(OAuthStateSigner.fromKeyRing([A]).verify(token, "state", NOW)).toEqual({ ok: true, payload });
  });

  it("keeps flows in progress working across a key rotation, and drops them once the old key is retired", () => {
    const before = OAuthStateSigner.fromKeyRing([A]).sign(payload);
    const during = OAuthStateSigner.fromKeyRing([B, A]);
    expect(during.verify(before, "state", NOW).ok).toBe(true);
    expect(OAuthStateSigner.fromKeyRing([A]).verify(during.sign(payload), "state", NOW).ok).toBe(false);
    expect(OAuthStateSigner.fromKeyRing([B]).verify(before, "state", NOW)).toEqual({
      ok: false,
      reason: "bad_signature",
    });
  });

  it("never uses the encryption key itself as the HMAC key", () => {
    const token = OAuthStateSigner.fromKeyRing([A]).sign(payload);
    expect(new OAuthStateSigner([A.key]).verify(token, "state", NOW).ok).toBe(false);
  });

  it("refuses tampered, expired, misused and malformed tokens", () => {
    const signer = OAuthStateSigner.fromKeyRing([A]);
    const token = signer.sign(payload);
    const [body, mac] = token.split(".") as [string, string];
    const forged = Buffer.from(JSON.stringify({ ...payload, cid: "T2" })).toString("base64url");
    expect(signer.verify(`${forged}.${mac}`, "state", NOW)).toEqual({ ok: false, reason: "bad_signature" });
    expect(signer.verify(`${body}.${mac.slice(0, -2)}`, "state", NOW).ok).toBe(false);
    expect(signer.verify(token, "state", NOW + 60_000)).toEqual({ ok: false, reason: "expired" });
    expect(signer.verify(token, "session", NOW)).toEqual({ ok: false, reason: "wrong_use" });
    for (const bad of ["", ".", "abc", `.${mac}`, "x".repeat(5000)]) {
      expect(signer.verify(bad, "state", NOW).ok).toBe(false);
    }
  });
});
