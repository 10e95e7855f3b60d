/**
 * The API key of `/v1/*`. Only its SHA-256 is stored (when generated), and
 * a presented key is only ever compared with `timingSafeEqual`, so no prefix
 * of it leaks through timing (invariant 5).
 */
import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import { TokenwardenError } from "../core/errors.js";
import type { Store } from "../core/ports.js";

const SETTING = "api_key_sha256";

export function sha256(value: string): Buffer {
  // The one-shot form: a third cheaper than createHash() on a key-sized input.
  return hash("sha256", value, "buffer");
}

/** Longest key the fast path holds (bytes); a longer key is always checked by its digest. */
const FAST_KEY_BYTES = 256;

/**
 * Checks `Authorization: Bearer <key>` against the key whose SHA-256 is
 * `digest`. Until a caller has presented the right key, every attempt is
 * hashed and compared digest to digest. Once one has, that key is kept in a
 * fixed-size zero-padded buffer and later attempts are compared to it with
 * `timingSafeEqual` over the whole buffer: hashing costs ~2 µs, a tenth of the
 * token route, and this costs ~0.2 µs. Neither path leaks a prefix of the key;
 * the fast path's time may vary with the length presented, which says nothing
 * useful about a key of enough entropy (a generated one's length is public).
 */
export class ApiKeyVerifier {
  readonly #digest: Buffer;
  #known: Buffer | null = null;
  #knownLength = 0;
  readonly #scratch = Buffer.alloc(FAST_KEY_BYTES);

  constructor(digest: Buffer) {
    this.#digest = digest;
  }

  matches(authorization: string | undefined): boolean {
    if (authorization === undefined || !authorization.startsWith("Bearer ")) return false;
    const key = authorization.slice("Bearer ".length);
    // A UTF-16 unit is at most 3 bytes of UTF-8: below this length the key always fits the buffer.
    if (this.#known !== null && key.length * 3 <= FAST_KEY_BYTES) {
      const n = this.#scratch.write(key, 0, "utf8");
      this.#scratch.fill(0, n);
      return timingSafeEqual(this.#scratch, this.#known) && n === this.#knownLength;
    }
    if (!timingSafeEqual(sha256(key), this.#digest)) return false;
    if (key.length * 3 <= FAST_KEY_BYTES) {
      this.#known = Buffer.alloc(FAST_KEY_BYTES);
      this.#knownLength = this.#known.write(key, 0, "utf8");
    }
    return true;
  }

  /** The error a caller without the right key gets, or null when the key is right. */
  refusal(authorization: string | undefined): TokenwardenError | null {
    if (this.matches(authorization)) return null;
    return new TokenwardenError(
      "unauthorized",
      "missing or wrong API key: send Authorization: Bearer <TOKENWARDEN_API_KEY>",
    );
  }

  assert(authorization: string | undefined): void {
    const refusal = this.refusal(authorization);
    if (refusal !== null) throw refusal;
  }
}

export interface ResolvedApiKey {
  digest: Buffer;
  /** Set only in the one process that generated the key: print it once, then forget it. */
  generated: string | null;
  source: "env" | "store";
}

/**
 * `TOKENWARDEN_API_KEY` when set; otherwise a key generated on the first start
 * of the first process and kept as a digest in the store, so every `serve`
 * sharing the database accepts it and nobody can read it back.
 */
export async function resolveApiKey(store: Store, configured: string | null): Promise<ResolvedApiKey> {
  if (configured !== null) return { digest: sha256(configured), generated: null, source: "env" };
  const candidate = `tw_${randomBytes(24).toString("base64url")}`;
  const stored = await store.putSettingIfAbsent(SETTING, sha256(candidate).toString("hex"));
  return {
    digest: Buffer.from(stored.value, "hex"),
    generated: stored.inserted ? candidate : null,
    source: "store",
  };
}
