import { createCipheriv, createDecipheriv, randomFillSync } from "node:crypto";
import { TokenwardenError } from "../core/errors.js";
import type { Sealer } from "../core/ports.js";
import { ENCRYPTION_KEY_VARIABLE, type EncryptionKey, KEY_ID, parseKeyRing } from "./key-ring.js";

const VERSION = "v1";
const IV_BYTES = 12; // the GCM standard nonce size (NIST SP 800-38D §8.2); random per value
const TAG_BYTES = 16;

/**
 * AES-256-GCM over a key ring. Sealed values read
 * `v1.<keyId>.<iv>.<ciphertext>.<tag>` (base64url parts); `aad` is bound as
 * associated data, so a value copied to another row or field fails to open.
 *
 * @example
 * const sealer = new AesGcmSealer(parseKeyRing(process.env.TOKENWARDEN_ENCRYPTION_KEY ?? ""));
 * const sealed = sealer.seal("xoxe-…", "T123\u0000bot\u0000refresh");
 * sealer.open(sealed, "T123\u0000bot\u0000refresh"); // "xoxe-…"
 */
export class AesGcmSealer implements Sealer {
  readonly currentKeyId: string;
  readonly keyIds: readonly string[];
  readonly #current: Buffer;
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly #ivs = new RandomIvs();

  constructor(keys: readonly EncryptionKey[]) {
    const first = keys[0];
    if (first === undefined)
      throw new TokenwardenError("config_invalid", `${ENCRYPTION_KEY_VARIABLE} holds no key`);
    this.currentKeyId = first.id;
    this.#current = first.key;
    this.#keys = new Map(keys.map((k) => [k.id, k.key]));
    this.keyIds = keys.map((k) => k.id);
  }

  seal(plaintext: string, aad: string): string {
    return this.#sealUnder(this.currentKeyId, this.#current, plaintext, aad);
  }

  sealWith(keyId: string, plaintext: string, aad: string): string {
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      throw new TokenwardenError(
        "config_invalid",
        `${ENCRYPTION_KEY_VARIABLE} holds no key with id "${printableId(keyId)}"`,
      );
    }
    return this.#sealUnder(keyId, key, plaintext, aad);
  }

  #sealUnder(keyId: string, key: Buffer, plaintext: string, aad: string): string {
    const iv = this.#ivs.next();
    const cipher = createCipheriv("aes-256-gcm", key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(aad, "utf8"));
    // GCM is a stream mode: final() only computes the tag and adds no bytes.
    const ciphertext = cipher.update(plaintext, "utf8");
    cipher.final();
    return `${VERSION}.${keyId}.${b64(iv)}.${b64(ciphertext)}.${b64(cipher.getAuthTag())}`;
  }

  open(sealed: string, aad: string): string {
    const parts = sealed.split(".");
    const [version, keyId, iv, ciphertext, tag] = parts;
    if (
      parts.length !== 5 ||
      version !== VERSION ||
      keyId === undefined ||
      !iv ||
      ciphertext === undefined ||
      !tag
    ) {
      throw new TokenwardenError("config_invalid", "a stored secret is not a v1 sealed value");
    }
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      throw new TokenwardenError(
        "config_invalid",
        `a stored secret is sealed with key id "${printableId(keyId)}", which ${ENCRYPTION_KEY_VARIABLE} does not hold; ` +
          "add that key after the current one (id:key,…)",
      );
    }
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(Buffer.from(aad, "utf8"));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
      return Buffer.concat([
        decipher.update(Buffer.from(ciphertext, "base64url")),
        decipher.final(),
      ]).toString("utf8");
    } catch (cause) {
      // GCM says only "unable to authenticate": the key under that id differs, or the value was altered or moved.
      throw new TokenwardenError(
        "config_invalid",
        `a stored secret sealed with key id "${printableId(keyId)}" failed authentication: ` +
          "the key with that id is different, or the value was altered or moved to another row",
        { cause },
      );
    }
  }

  needsReseal(sealed: string): boolean {
    return !sealed.startsWith(sealedPrefix(this.currentKeyId));
  }
}

/**
 * Random 96-bit nonces, drawn from the CSPRNG a page at a time: `randomBytes(12)`
 * per value costs a quarter of a seal. Each nonce is used once and is as random
 * as its own `randomBytes` call would be.
 */
class RandomIvs {
  readonly #page = Buffer.alloc(IV_BYTES * 256);
  #offset = this.#page.length;

  /** A view valid until the next call: createCipheriv copies it. */
  next(): Buffer {
    if (this.#offset === this.#page.length) {
      randomFillSync(this.#page);
      this.#offset = 0;
    }
    const iv = this.#page.subarray(this.#offset, this.#offset + IV_BYTES);
    this.#offset += IV_BYTES;
    return iv;
  }
}

/** Every value sealed with `keyId` starts with this; the stores filter on it in SQL. */
export function sealedPrefix(keyId: string): string {
  return `${VERSION}.${keyId}.`;
}

/**
 * The id of the key a sealed value names (`v1.<keyId>.…`), read without opening it; null when the
 * value is malformed. Key ids are not secret, so a store can say which key a value it cannot open needs.
 */
export function sealedKeyId(sealed: string): string | null {
  const [version, keyId] = sealed.split(".", 2);
  return version === VERSION && keyId !== undefined && KEY_ID.test(keyId) ? keyId : null;
}

/** Parses `TOKENWARDEN_ENCRYPTION_KEY` and builds its sealer in one step. */
export function createSealer(keyRing: string): AesGcmSealer {
  return new AesGcmSealer(parseKeyRing(keyRing));
}

/** Ids are not secret, but a corrupted value could put anything in that slot. */
function printableId(keyId: string): string {
  return KEY_ID.test(keyId) ? keyId : "(malformed)";
}

function b64(bytes: Buffer): string {
  return bytes.toString("base64url");
}
