import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { reconnectUrlOf } from "../../src/core/reconnect-url.js";
import type { EncryptionKey } from "../../src/crypto/key-ring.js";
import { ReconnectLinkSigner } from "../../src/crypto/reconnect-link.js";

const A: EncryptionKey = { id: "a", key: randomBytes(32) };
const B: EncryptionKey = { id: "b", key: randomBytes(32) };

describe("ReconnectLinkSigner (keys derived from the encryption key ring)", () => {
  it("signs one provider's one connection: any other id or provider does not verify", () => {
    const links = ReconnectLinkSigner.fromKeyRing([A]);
    const sig = links.sign("slack", "T1");
    expect(sig).toMatch(/^[\w-]{43}$/);
    expect(ReconnectLinkSigner.fromKeyRing([A]).verify("slack", "T1", sig)).toBe(true);
    expect(links.verify("slack", "T2", sig)).toBe(false);
    expect(links.verify("github", "T1", sig)).toBe(false);
    expect(links.verify("slack", "T1", sig.slice(0, -2))).toBe(false);
    expect(links.verify("slack", "T1", "")).toBe(false);
  });

  it("keeps handed-out links signed through a key rotation, until the old key leaves the ring", () => {
    const before = ReconnectLinkSigner.fromKeyRing([A]).sign("slack", "T1");
    expect(ReconnectLinkSigner.fromKeyRing([B, A]).verify("slack", "T1", before)).toBe(true);
    expect(ReconnectLinkSigner.fromKeyRing([B]).verify("slack", "T1", before)).toBe(false);
  });

  it("puts the signature after the connection id, or leaves the link bare", () => {
    const links = ReconnectLinkSigner.fromKeyRing([A]);
    expect(reconnectUrlOf("https://tw.example.com/", "slack", "acme co", links.sign.bind(links))).toBe(
      `https://tw.example.com/oauth/slack/install?connection_id=acme%20co&sig=${links.sign("slack", "acme co")}`,
    );
    expect(reconnectUrlOf("https://tw.example.com", "slack", "T1", null)).toBe(
      "https://tw.example.com/oauth/slack/install?connection_id=T1",
    );
  });
});
