/**
 * The signature of a reconnect link. Anyone can type `/oauth/slack/install?connection_id=…`, so the
 * install route says what became of the connection a link names (its workspace, that it was
 * deleted) only to a link tokenwarden made: one carrying `sig`, an HMAC of the provider and the
 * connection id under a key derived (HKDF) from the encryption key ring. Every process sharing the
 * store holds that ring, so each can make and check any link, and nothing is stored.
 *
 * It does not expire: a reconnect link waits in a webhook receiver, a ticket or an inbox for as long
 * as its connection stays dead. What a link can do is bounded by the callback's workspace check, not
 * by the signature; a link whose key left the ring is a bare id's, and still reconnects.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import type { EncryptionKey } from "./key-ring.js";

/** HKDF context: this key is no other purpose's (the OAuth state's key has its own). */
const HKDF_INFO = "tokenwarden reconnect-link hmac v1";

export class ReconnectLinkSigner {
  /** Signs with the first; checks with any, so links made before a key rotation keep their worth. */
  readonly #keys: readonly Buffer[];

  private constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error("ReconnectLinkSigner needs at least one key");
    this.#keys = keys;
  }

  static fromKeyRing(ring: readonly EncryptionKey[]): ReconnectLinkSigner {
    return new ReconnectLinkSigner(
      ring.map((k) => Buffer.from(hkdfSync("sha256", k.key, Buffer.alloc(0), HKDF_INFO, 32))),
    );
  }

  /** base64url, 43 characters. */
  sign(provider: string, connectionId: string): string {
    return this.#mac(this.#keys[0] as Buffer, provider, connectionId).toString("base64url");
  }

  verify(provider: string, connectionId: string, signature: string): boolean {
    const given = Buffer.from(signature, "base64url");
    // Every key is tried, matched or not: the time taken says nothing about which one signed.
    let valid = false;
    for (const key of this.#keys) {
      const expected = this.#mac(key, provider, connectionId);
      if (given.length === expected.length && timingSafeEqual(given, expected)) valid = true;
    }
    return valid;
  }

  #mac(key: Buffer, provider: string, connectionId: string): Buffer {
    // JSON keeps the two apart whatever characters they hold.
    return createHmac("sha256", key)
      .update(JSON.stringify([provider, connectionId]))
      .digest();
  }
}
