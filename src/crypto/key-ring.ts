import { createHash, randomBytes } from "node:crypto";
import { TokenwardenError } from "../core/errors.js";

/** The environment variable the key ring comes from; named in every error, its value never echoed. */
export const ENCRYPTION_KEY_VARIABLE = "TOKENWARDEN_ENCRYPTION_KEY";

const KEY_BYTES = 32;
/** Ids end up inside sealed values (`v1.<id>.…`) and SQL prefixes, so no `.`, `:` or `,`. */
export const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;
/** Standard or URL-safe base64 of exactly 32 bytes (43 characters, optional `=` padding). */
const BASE64_32 = /^[A-Za-z0-9+/_-]{43}=?$/;

export interface EncryptionKey {
  /** Stored in clear inside every sealed value; identifies, never reveals, the key. */
  id: string;
  key: Buffer;
}

/**
 * Parses `TOKENWARDEN_ENCRYPTION_KEY`: either one base64 key of 32 bytes (its
 * id is derived from its hash), or `id1:key1,id2:key2` where the first key
 * seals and every key opens; an entry without `id:` keeps its derived id. Errors say which entry is wrong, never its value.
 *
 * @example
 * const keys = parseKeyRing(process.env.TOKENWARDEN_ENCRYPTION_KEY ?? "");
 * keys[0].id; // the key new values are sealed with
 */
export function parseKeyRing(value: string, variable = ENCRYPTION_KEY_VARIABLE): EncryptionKey[] {
  const trimmed = value.trim();
  if (trimmed === "") throw invalid(variable, "is empty");
  if (!trimmed.includes(":") && !trimmed.includes(",")) {
    const key = decodeKey(trimmed, variable, "the key");
    return [{ id: deriveKeyId(key), key }];
  }
  const keys: EncryptionKey[] = [];
  trimmed.split(",").forEach((entry, index) => {
    const where = `entry ${index + 1}`;
    const colon = entry.indexOf(":");
    let next: EncryptionKey;
    if (colon < 0) {
      // A bare key keeps its derived id, so `new:KEY,OLDKEY` rotates away from a single-key setup.
      const key = decodeKey(entry.trim(), variable, where);
      next = { id: deriveKeyId(key), key };
      if (keys.some((k) => k.id === next.id)) throw invalid(variable, `key id "${next.id}" appears twice`);
    } else {
      const id = entry.slice(0, colon).trim();
      // An id that fails the pattern may be a pasted key: say what is wrong, not what it was.
      if (!KEY_ID.test(id))
        throw invalid(variable, `${where} has an invalid key id (1-32 of A-Z a-z 0-9 _ -)`);
      if (keys.some((k) => k.id === id)) throw invalid(variable, `key id "${id}" appears twice`);
      next = { id, key: decodeKey(entry.slice(colon + 1).trim(), variable, `${where} (key id "${id}")`) };
    }
    // The old key pasted under the new id: `keys rotate` would re-seal everything under the key it
    // was meant to retire, and the old entry would then look safe to drop (or a leaked key retired).
    // Only the first key, which seals, is that mistake. The same key under two ids after it only
    // reads, and is the way out of that mistake made before it was refused: values sealed under both
    // ids open, and a new key first rotates them all away.
    if (keys[0]?.key.equals(next.key) === true) {
      throw invalid(
        variable,
        `entries 1 (key id "${keys[0].id}") and ${index + 1} (key id "${next.id}") hold the same key; ` +
          "a new key must be new (generate one with `tokenwarden keys generate`). If values are already " +
          `sealed under both ids, put a new key first and keep both after it (k3:NEW,${keys[0].id}:KEY,…), then run keys rotate`,
      );
    }
    keys.push(next);
  });
  return keys;
}

/** A new random key, base64 of 32 bytes, ready for `TOKENWARDEN_ENCRYPTION_KEY`. */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString("base64");
}

/** First 8 hex characters of SHA-256 of the key: stable across restarts, reveals nothing usable. */
export function deriveKeyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 8);
}

function decodeKey(text: string, variable: string, what: string): Buffer {
  if (!BASE64_32.test(text)) {
    throw invalid(
      variable,
      `${what} is not base64 of exactly ${KEY_BYTES} bytes (generate one with \`tokenwarden keys generate\`)`,
    );
  }
  const key = Buffer.from(text.replaceAll("-", "+").replaceAll("_", "/"), "base64");
  if (key.length !== KEY_BYTES)
    throw invalid(variable, `${what} decodes to ${key.length} bytes, not ${KEY_BYTES}`);
  return key;
}

function invalid(variable: string, problem: string): TokenwardenError {
  // The shape of loadConfig's errors: one line that names the variable, then what is wrong with it.
  return new TokenwardenError("config_invalid", `invalid configuration: ${variable}: ${problem}`);
}
