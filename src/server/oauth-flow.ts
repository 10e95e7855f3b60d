/**
 * The install / reconnect flow's tokens: an OAuth `state` and a connect-session
 * link are both `base64url(JSON).base64url(HMAC-SHA256)`. The HMAC key is
 * derived (HKDF) from the encryption key every `serve` process already shares,
 * so any process can check what another issued and no signing secret is kept
 * anywhere, in the store or elsewhere. Each token carries its purpose, expiry
 * and target; `state` is also single-use (a mark in the store, so across
 * processes too).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { EncryptionKey } from "../crypto/key-ring.js";

/** HKDF context: a key derived for this purpose is useless for any other. */
const HKDF_INFO = "tokenwarden oauth-flow hmac v1";

const PayloadSchema = z
  .object({
    /** state: sent to the provider; session: a link handed to an end user. */
    use: z.enum(["state", "session"]),
    /** Unique id: the single-use key of a state. */
    sid: z.string().min(8).max(64),
    /** The connection to reconnect, if any. */
    cid: z.string().max(128).nullable(),
    /**
     * A state only: `cid` came from a link tokenwarden made for it (a connect session, a signed
     * reconnect link), so the callback's pages may say what became of that connection. Absent: a
     * bare id anyone could have typed (or a state issued before this field existed).
     */
    known: z.literal(true).optional(),
    /** A state only: the connect session it was started from (its id and expiry), spent by its install. */
    session: z
      .object({ sid: z.string().min(8).max(64), exp: z.number().int() })
      .strict()
      .optional(),
    /** An allowed return URL, checked when the token was issued. */
    ret: z.string().max(2048).nullable(),
    /** Expiry, epoch ms. */
    exp: z.number().int(),
  })
  .strict();
export type FlowPayload = z.output<typeof PayloadSchema>;

export type FlowVerdict =
  | { ok: true; payload: FlowPayload }
  | { ok: false; reason: "malformed" | "bad_signature" | "expired" | "wrong_use" };

export class OAuthStateSigner {
  /** Signs with the first; verifies with any, so a key rotation does not break a flow in progress. */
  readonly #keys: readonly Buffer[];

  constructor(keys: readonly Buffer[]) {
    if (keys.length === 0) throw new Error("OAuthStateSigner needs at least one key");
    this.#keys = keys;
  }

  /** Keys derived from the encryption key ring (first signs, all verify). */
  static fromKeyRing(ring: readonly EncryptionKey[]): OAuthStateSigner {
    return new OAuthStateSigner(
      ring.map((k) => Buffer.from(hkdfSync("sha256", k.key, Buffer.alloc(0), HKDF_INFO, 32))),
    );
  }

  sign(payload: FlowPayload): string {
    const body = Buffer.from(JSON.stringify(payload), "utf8").toString("base64url");
    return `${body}.${this.#mac(this.#keys[0] as Buffer, body).toString("base64url")}`;
  }

  verify(token: string, use: FlowPayload["use"], nowMs: number): FlowVerdict {
    const dot = token.indexOf(".");
    if (token.length > 4096 || dot <= 0) return { ok: false, reason: "malformed" };
    const body = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), "base64url");
    // Every key is tried, matched or not: the time taken says nothing about which one signed.
    let signed = false;
    for (const key of this.#keys) {
      const expected = this.#mac(key, body);
      if (given.length === expected.length && timingSafeEqual(given, expected)) signed = true;
    }
    if (!signed) return { ok: false, reason: "bad_signature" };
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
    } catch {
      return { ok: false, reason: "malformed" };
    }
    const r = PayloadSchema.safeParse(parsed);
    if (!r.success) return { ok: false, reason: "malformed" };
    if (r.data.use !== use) return { ok: false, reason: "wrong_use" };
    if (r.data.exp <= nowMs) return { ok: false, reason: "expired" };
    return { ok: true, payload: r.data };
  }

  #mac(key: Buffer, body: string): Buffer {
    return createHmac("sha256", key).update(body).digest();
  }
}

export function newFlowId(): string {
  return randomBytes(16).toString("base64url");
}

/**
 * A return URL is allowed only when its origin is on the allow-list, so the
 * install flow can never be used to bounce a user to an attacker's site.
 */
export function isAllowedReturnUrl(url: string, allowed: ReadonlySet<string>): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return false;
  if (parsed.username !== "" || parsed.password !== "") return false;
  return allowed.has(parsed.origin);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A small, self-contained page for the person in the browser; text is escaped. */
export function htmlPage(title: string, message: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)} · tokenwarden</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body></html>`;
}
