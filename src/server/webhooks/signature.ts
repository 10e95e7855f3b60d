/**
 * Outgoing webhook signatures: `X-Tokenwarden-Signature: v1=<hex>` where hex is
 * HMAC-SHA256(TOKENWARDEN_WEBHOOK_SECRET, `${X-Tokenwarden-Timestamp}.${raw body}`).
 * The timestamp (unix seconds) is signed so a captured delivery cannot be replayed later.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const WEBHOOK_HEADERS = {
  id: "x-tokenwarden-id",
  event: "x-tokenwarden-event",
  timestamp: "x-tokenwarden-timestamp",
  signature: "x-tokenwarden-signature",
} as const;

export function signWebhook(secret: string, timestampSeconds: number | string, body: string): string {
  return `v1=${createHmac("sha256", secret).update(`${timestampSeconds}.`).update(body).digest("hex")}`;
}

/**
 * What a receiver runs (also in the README): constant-time, with a replay window.
 *
 * @example
 * verifyWebhook({ secret, body: rawBody, nowMs: Date.now(),
 *   timestampHeader: req.headers["x-tokenwarden-timestamp"], signatureHeader: req.headers["x-tokenwarden-signature"] });
 */
export function verifyWebhook(o: {
  secret: string;
  body: string;
  timestampHeader: string | undefined;
  signatureHeader: string | undefined;
  nowMs: number;
  toleranceSeconds?: number;
}): boolean {
  const ts = o.timestampHeader ?? "";
  const sig = o.signatureHeader ?? "";
  if (!/^\d{1,12}$/.test(ts) || !/^v1=[0-9a-f]{64}$/.test(sig)) return false;
  if (Math.abs(o.nowMs / 1000 - Number(ts)) > (o.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signWebhook(o.secret, ts, o.body));
  const given = Buffer.from(sig);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
