import type { DeadReason, Reason } from "./types.js";

export type ErrorCode =
  | "needs_reauth"
  | "not_found"
  | "invalid_input"
  | "conflict"
  | "unauthorized"
  | "provider_unavailable"
  | "provider_misconfigured"
  | "config_invalid"
  | "store_unavailable";

/** The one exception type at every boundary. Messages never contain a secret. */
export class TokenwardenError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A credential is dead until a person reconnects; carries why and where to send them. */
export class NeedsReauthError extends TokenwardenError {
  readonly connectionId: string;
  readonly reason: DeadReason | Reason;
  readonly reconnectUrl: string | null;
  constructor(
    connectionId: string,
    reason: DeadReason | Reason,
    reconnectUrl: string | null,
    options?: ErrorOptions,
  ) {
    super("needs_reauth", `connection ${connectionId} needs re-authorization (${reason})`, options);
    this.connectionId = connectionId;
    this.reason = reason;
    this.reconnectUrl = reconnectUrl;
  }
}

/**
 * A transient provider failure; `retryAfterMs` is the provider's own hint when it gave one, and
 * `providerError` the provider's error this caller met (`http_500`, `ratelimited`), when there was one.
 */
export class ProviderUnavailableError extends TokenwardenError {
  readonly reason: Reason;
  readonly retryAfterMs: number | null;
  readonly providerError: string | null;
  constructor(
    message: string,
    reason: Reason,
    retryAfterMs: number | null,
    options?: ErrorOptions & { providerError?: string },
  ) {
    super("provider_unavailable", message, options);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
    this.providerError = options?.providerError ?? null;
  }
}
