import { createHash } from "node:crypto";

/**
 * A stable name for a pair of client credentials that reveals neither: SHA-256 over a domain label,
 * the id and the secret, cut to 96 bits (base64url). Client secrets are long random strings, so the
 * hash cannot be reversed or guessed from; it only tells two processes whether they send the same pair.
 */
export function clientFingerprint(clientId: string, clientSecret: string): string {
  return createHash("sha256")
    .update(`tokenwarden client fingerprint\u0000${clientId}\u0000${clientSecret}`, "utf8")
    .digest("base64url")
    .slice(0, 16);
}
