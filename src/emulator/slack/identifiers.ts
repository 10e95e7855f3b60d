// Identifier and token shapes per slack-api.md §1. Clients must treat tokens as opaque (§1.1), so the
// opaque parts are random; only the prefixes carry meaning.
import { randomBytes } from "node:crypto";

const UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

function pick(alphabet: string, length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  // 256 % 36 and 256 % 62 leave a slight bias; irrelevant for test identifiers.
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

function digits(length: number): string {
  const bytes = randomBytes(length);
  let out = String(((bytes[0] ?? 0) % 9) + 1);
  for (let i = 1; i < length; i++) out += String((bytes[i] ?? 0) % 10);
  return out;
}

/** `A0KRD7HC3`, `T9TK3CUKW`, `E12345678`, `U…`, `B…` (§1.2). */
export function slackId(prefix: "A" | "T" | "E" | "U" | "B" | "C" | "W"): string {
  return prefix + pick(UPPER_ALNUM, 10);
}

/** `2141029472.691202649728` (§1.2). */
export function newClientId(): string {
  return `${digits(10)}.${digits(12)}`;
}

/** 32 lowercase hex (§1.2); also used for signing secrets. */
export function newHexSecret(): string {
  return randomBytes(16).toString("hex");
}

/** `Ev…` (§1.2). */
export function newEventId(): string {
  return `Ev${pick(UPPER_ALNUM, 10)}`;
}

/** `4724469134.4644010092847.<64 hex>` (§1.2). */
export function newAuthCode(): string {
  return `${digits(10)}.${digits(13)}.${randomBytes(32).toString("hex")}`;
}

/** A non-expiring bot token `xoxb-{team#}-{botuser#}-{24 alnum}` (§1.1). */
export function newBotToken(): string {
  return `xoxb-${digits(11)}-${digits(11)}-${pick(ALNUM, 24)}`;
}

/** A non-expiring user token `xoxp-{team#}-{user#}-{#}-{32 hex}` (§1.1). */
export function newUserToken(): string {
  return `xoxp-${digits(11)}-${digits(11)}-${digits(11)}-${randomBytes(16).toString("hex")}`;
}

/** Rotating access tokens `xoxe.xoxb-1-…` / `xoxe.xoxp-1-…` and refresh tokens `xoxe-1-…` (§1.1). */
export function newRotatingAccessToken(kind: "bot" | "user"): string {
  return `xoxe.${kind === "bot" ? "xoxb" : "xoxp"}-1-${randomBytes(48).toString("base64url")}`;
}

export function newRefreshToken(): string {
  return `xoxe-1-${randomBytes(48).toString("base64url")}`;
}

/** Opaque id of a pending consent screen (not a Slack identifier). */
export function newOpaqueId(): string {
  return randomBytes(16).toString("base64url");
}
