/**
 * Slack request signing (slack-api.md §6.4): `v0=` + hex HMAC-SHA256 of
 * `v0:{timestamp}:{raw body}` keyed with the signing secret.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Computes the `X-Slack-Signature` value for a body. The emulator and tests use
 * it to sign; the events receiver verifies with {@link verifySlackSignature}.
 *
 * @example
 * signSlackRequest("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, "token=xyzz0WbapA4vBCDEFasx0q6G&…");
 * // "v0=a2114d57…"
 */
export function signSlackRequest(
  signingSecret: string,
  timestampSeconds: number | string,
  rawBody: string | Uint8Array,
): string {
  const hmac = createHmac("sha256", signingSecret);
  hmac.update(`v0:${timestampSeconds}:`);
  hmac.update(rawBody);
  return `v0=${hmac.digest("hex")}`;
}

export interface VerifySlackSignatureOptions {
  signingSecret: string;
  /** `X-Slack-Request-Timestamp`, as received (unix seconds). */
  timestampHeader: string | string[] | null | undefined;
  /** `X-Slack-Signature`, as received (`v0=<64 hex>`). */
  signatureHeader: string | string[] | null | undefined;
  /** The body bytes exactly as received, before any JSON or form parsing. */
  rawBody: string | Uint8Array;
  nowMs: number;
  /** Allowed |now − timestamp|; Slack and its SDKs use 5 minutes. */
  toleranceSeconds?: number;
}

export type SlackSignatureVerdict =
  | { ok: true }
  | { ok: false; reason: "missing" | "stale" | "mismatch" | "malformed" };

function single(header: string | string[] | null | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  return value === undefined || value === null || value === "" ? null : value;
}

/**
 * Verifies a signed request from Slack. The timestamp is checked as an absolute
 * difference, so requests from the future are refused too (as python's
 * `SignatureVerifier` does; bolt-js checks only the past, §6.4). The comparison
 * is constant-time on equal-length buffers (invariant 5). Never throws.
 *
 * @example
 * const verdict = verifySlackSignature({
 *   signingSecret, rawBody, nowMs: clock.now(),
 *   timestampHeader: req.headers["x-slack-request-timestamp"],
 *   signatureHeader: req.headers["x-slack-signature"],
 * });
 * if (!verdict.ok) return reply.code(401).send();
 */
export function verifySlackSignature(o: VerifySlackSignatureOptions): SlackSignatureVerdict {
  const timestamp = single(o.timestampHeader);
  const signature = single(o.signatureHeader);
  if (timestamp === null || signature === null) return { ok: false, reason: "missing" };
  if (!/^\d{1,12}$/.test(timestamp) || !/^v0=[0-9a-fA-F]{64}$/.test(signature)) {
    return { ok: false, reason: "malformed" };
  }
  const toleranceSeconds = o.toleranceSeconds ?? 300;
  if (Math.abs(o.nowMs / 1000 - Number(timestamp)) > toleranceSeconds) return { ok: false, reason: "stale" };
  const expected = Buffer.from(signSlackRequest(o.signingSecret, timestamp, o.rawBody), "utf8");
  const given = Buffer.from(signature.toLowerCase(), "utf8");
  // Both are "v0=" + 64 hex by now, so the lengths match and timingSafeEqual cannot throw.
  return expected.length === given.length && timingSafeEqual(expected, given)
    ? { ok: true }
    : { ok: false, reason: "mismatch" };
}
