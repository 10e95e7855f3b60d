/**
 * The API key of `/v1/*`. Only its SHA-256 is kept (in memory, and in the
 * store when generated), and a presented key is compared digest to digest
 * with `timingSafeEqual`, so neither the key's length nor its prefix leaks
 * through timing (invariant 5).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { TokenwardenError } from "../core/errors.js";
import type { Store } from "../core/ports.js";

const SETTING = "api_key_sha256";

export function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** True when `authorization` is `Bearer <key>` for the key whose digest is `expected`. */
export function apiKeyMatches(authorization: string | undefined, expected: Buffer): boolean {
  if (authorization === undefined || !authorization.startsWith("Bearer ")) return false;
  return timingSafeEqual(sha256(authorization.slice("Bearer ".length)), expected);
}

export function assertApiKey(authorization: string | undefined, expected: Buffer): void {
  if (!apiKeyMatches(authorization, expected)) {
    throw new TokenwardenError(
      "unauthorized",
      "missing or wrong API key: send Authorization: Bearer <TOKENWARDEN_API_KEY>",
    );
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
