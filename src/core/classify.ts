/**
 * Error classification shared by providers (DESIGN.md invariant 4: classify,
 * then act). Pure: it looks at values, never performs I/O.
 */
import type { Classification, TransientReason } from "./types.js";

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * A row of a provider's classification table: a `Classification` without the
 * per-answer fields (`error` is the table key, `retryAfterMs` comes from headers).
 */
export type ClassificationRule = DistributiveOmit<Classification, "error" | "retryAfterMs">;

/**
 * Error codes come off the wire and end up in events, logs and API replies. A
 * code that does not look like one (too long, odd characters) may be anything,
 * even an echoed token, so it is replaced.
 *
 * @example
 * safeErrorCode("invalid_grant"); // "invalid_grant"
 * safeErrorCode("xoxb-123 is bad"); // "unrecognized_error"
 */
export function safeErrorCode(code: unknown): string | null {
  if (typeof code !== "string" || code === "") return null;
  return /^[A-Za-z0-9_.:-]{1,64}$/.test(code) ? code : "unrecognized_error";
}

/**
 * Builds a transient classification, leaving `retryAfterMs` out when unknown
 * (exactOptionalPropertyTypes: absent and undefined differ).
 *
 * @example
 * transient("rate_limited", "ratelimited", 30_000);
 */
export function transient(reason: TransientReason, error: string, retryAfterMs?: number): Classification {
  return retryAfterMs === undefined
    ? { kind: "transient", reason, error }
    : { kind: "transient", reason, error, retryAfterMs };
}

/**
 * Fills a table row with the answer's error code (and Retry-After for transient rows).
 *
 * @example
 * fromRule({ kind: "dead", reason: "invalid_grant" }, "invalid_grant");
 */
export function fromRule(rule: ClassificationRule, error: string, retryAfterMs?: number): Classification {
  if (rule.kind === "transient") return transient(rule.reason, error, retryAfterMs);
  return { ...rule, error } as Classification;
}

/**
 * `Retry-After` (RFC 9110 §10.2.3) in ms: delay-seconds or an HTTP-date.
 * Undefined when absent or unreadable; never negative.
 *
 * @example
 * parseRetryAfter("30", 0); // 30_000
 * parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", Date.UTC(2015, 9, 21, 7, 27, 0)); // 60_000
 */
export function parseRetryAfter(header: string | null | undefined, nowMs: number): number | undefined {
  if (header === null || header === undefined) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const atMs = Date.parse(value);
  if (Number.isNaN(atMs)) return undefined;
  return Math.max(0, atMs - nowMs);
}

/** RFC 6749 §5.2 error codes and what they mean for a refresh. */
const OAUTH2_ERRORS = {
  // "invalid, expired, revoked, … or was issued to another client": only a person can fix it.
  invalid_grant: { kind: "dead", reason: "invalid_grant" },
  // Our client credentials or registration are wrong: flag the provider, not the connections.
  invalid_client: { kind: "misconfigured", reason: "provider_misconfigured" },
  unauthorized_client: { kind: "misconfigured", reason: "provider_misconfigured" },
  unsupported_grant_type: { kind: "misconfigured", reason: "provider_misconfigured" },
  // RFC 6749 §4.1.2.1 codes some token endpoints also use.
  server_error: { kind: "transient", reason: "provider_unavailable" },
  temporarily_unavailable: { kind: "transient", reason: "provider_unavailable" },
  // RFC 6750 §3.1, on an API call: the access token is expired or revoked; try a refresh.
  invalid_token: { kind: "refreshable" },
  insufficient_scope: { kind: "forbidden", reason: "missing_scope" },
} as const satisfies Record<string, ClassificationRule>;

/**
 * Classifies an RFC 6749 §5.2 token-endpoint error (and RFC 6750 API errors).
 * 429 is always `rate_limited` and 5xx always `provider_unavailable`, whatever
 * the body says; a 401 without a code is `invalid_client` (RFC 6749 §5.2: the
 * client failed to authenticate). An unknown code NEVER kills a connection: it
 * is transient (`provider_unavailable`), recorded, and left to `diagnose`.
 * `invalid_request` and `invalid_scope` are among those: we never send a
 * scope on refresh, so they point at a provider quirk, not at a dead grant.
 *
 * @example
 * classifyOAuth2Error("invalid_grant", 400); // { kind: "dead", reason: "invalid_grant", error: "invalid_grant" }
 * classifyOAuth2Error(undefined, 503);       // { kind: "transient", reason: "provider_unavailable", error: "http_503" }
 */
export function classifyOAuth2Error(
  error: unknown,
  httpStatus: number,
  retryAfterMs?: number,
): Classification {
  const code = safeErrorCode(error);
  if (httpStatus === 429) return transient("rate_limited", code ?? "http_429", retryAfterMs);
  if (httpStatus >= 500) return transient("provider_unavailable", code ?? `http_${httpStatus}`, retryAfterMs);
  // hasOwn: the code comes off the wire; "constructor" must not match Object.prototype.
  if (code !== null && Object.hasOwn(OAUTH2_ERRORS, code)) {
    return fromRule(OAUTH2_ERRORS[code as keyof typeof OAUTH2_ERRORS], code, retryAfterMs);
  }
  if (code === null && httpStatus === 401) {
    return { kind: "misconfigured", reason: "provider_misconfigured", error: "http_401" };
  }
  return transient("provider_unavailable", code ?? `http_${httpStatus}`, retryAfterMs);
}

/** A failure before any answer came back: the request may or may not have been sent. */
export interface TransportFailure {
  classification: Classification;
  /** False only when the request provably never left this process (see {@link classifyTransportError}). */
  mayHaveReachedProvider: boolean;
}

/**
 * Error codes (Node/undici) raised before a request was written: the connection
 * was never established, so the refresh token was not spent.
 */
const NEVER_SENT = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function codeOf(error: unknown, depth = 0): string | null {
  if (typeof error !== "object" || error === null || depth > 4) return null;
  const e = error as { code?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === "string") return e.code;
  // Happy eyeballs: an AggregateError holding one error per address tried.
  if (Array.isArray(e.errors) && e.errors.length > 0) return codeOf(e.errors[0], depth + 1);
  return codeOf(e.cause, depth + 1);
}

function nameOf(error: unknown): string | null {
  if (typeof error !== "object" || error === null) return null;
  const name = (error as { name?: unknown }).name;
  return typeof name === "string" ? name : null;
}

/**
 * Whether a classification's `error` is our label for a call that got no usable answer (a timeout,
 * a socket error code, an HTTP status without a Slack body) rather than an error the provider sent.
 *
 * @example
 * isNoAnswerLabel("ECONNREFUSED"); // true
 * isNoAnswerLabel("invalid_auth"); // false
 */
export function isNoAnswerLabel(error: string): boolean {
  return /^(timeout|aborted|network_error|invalid_response|http_\d{3}|[A-Z][A-Z0-9_]*)$/.test(error);
}

/**
 * Classifies a failed `fetch` (no HTTP answer): always transient, never a reason
 * to give up on a connection. `mayHaveReachedProvider` is false only when the
 * request provably never left (connection refused, DNS failure, TLS rejected);
 * a timeout, an abort or a reset may have come after the provider read and acted
 * on it, so it is true, and so is anything unrecognised: claiming "not sent"
 * wrongly would hide a spent refresh token (invariant 1's in-doubt rule).
 *
 * @param aborted whether our own signal fired (timeout or cancel)
 * @example
 * classifyTransportError(Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } }), false);
 * // { classification: { kind: "transient", reason: "provider_unavailable", error: "ECONNREFUSED" }, mayHaveReachedProvider: false }
 */
export function classifyTransportError(error: unknown, aborted: boolean): TransportFailure {
  const name = nameOf(error);
  if (aborted || name === "AbortError" || name === "TimeoutError") {
    const label = name === "TimeoutError" ? "timeout" : "aborted";
    return { classification: transient("provider_unavailable", label), mayHaveReachedProvider: true };
  }
  const code = safeErrorCode(codeOf(error)) ?? "network_error";
  const timedOut = code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT";
  return {
    classification: transient("provider_unavailable", timedOut ? "timeout" : code),
    mayHaveReachedProvider: !NEVER_SENT.has(code),
  };
}
