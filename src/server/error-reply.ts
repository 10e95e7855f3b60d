/**
 * The one place domain errors meet HTTP (STYLE.md §3): an exhaustive status
 * table, and a Fastify error handler that turns every failure into
 * `{ "error": { "code", "message" } }` without ever echoing input or a secret.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import {
  type ErrorCode,
  NeedsReauthError,
  ProviderUnavailableError,
  TokenwardenError,
} from "../core/errors.js";

/** Domain codes plus the few that only HTTP has. */
export type HttpErrorCode =
  | ErrorCode
  | "payload_too_large"
  | "unsupported_media_type"
  | "internal"
  | "shutting_down";

/** A new code without a status fails `tsc`. */
export const STATUS: Record<HttpErrorCode, number> = {
  invalid_input: 400,
  unauthorized: 401,
  not_found: 404,
  needs_reauth: 409,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal: 500,
  config_invalid: 500,
  provider_misconfigured: 502,
  provider_unavailable: 503,
  store_unavailable: 503,
  shutting_down: 503,
};

/** An error raised by the HTTP layer itself (body size, media type) with a code of its own. */
export class HttpError extends Error {
  readonly code: HttpErrorCode;
  constructor(code: HttpErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface ErrorBody {
  error: { code: HttpErrorCode; message: string; [extra: string]: unknown };
}

/** The reply for any thrown value; `extra` fields are part of the contract (reason, reconnect_url, retry_after). */
export function errorBodyOf(error: unknown): { status: number; body: ErrorBody; retryAfterSeconds?: number } {
  if (error instanceof NeedsReauthError) {
    return {
      status: STATUS.needs_reauth,
      body: {
        error: {
          code: "needs_reauth",
          message: error.message,
          connection_id: error.connectionId,
          reason: error.reason,
          reconnect_url: error.reconnectUrl,
        },
      },
    };
  }
  if (error instanceof ProviderUnavailableError) {
    const retryAfterSeconds =
      error.retryAfterMs === null ? undefined : Math.max(1, Math.ceil(error.retryAfterMs / 1000));
    return {
      status: STATUS.provider_unavailable,
      body: { error: { code: "provider_unavailable", message: error.message, reason: error.reason } },
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    };
  }
  if (error instanceof TokenwardenError || error instanceof HttpError) {
    return { status: STATUS[error.code], body: { error: { code: error.code, message: error.message } } };
  }
  const fastify = fastifyErrorCode(error);
  if (fastify !== null) return { status: STATUS[fastify.code], body: { error: fastify } };
  return {
    status: 500,
    body: { error: { code: "internal", message: "internal error; see the server log" } },
  };
}

/** Fastify's own 4xx errors (body parsing, limits), in our words; their messages never carry the body. */
function fastifyErrorCode(error: unknown): { code: HttpErrorCode; message: string } | null {
  if (typeof error !== "object" || error === null) return null;
  const e = error as Partial<FastifyError>;
  switch (e.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return { code: "payload_too_large", message: "request body is too large" };
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return { code: "unsupported_media_type", message: "unsupported Content-Type; send application/json" };
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return { code: "invalid_input", message: "the JSON body is empty" };
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      return { code: "invalid_input", message: "the body is not valid JSON" };
    case "FST_ERR_MAX_PARAM_LENGTH":
      return { code: "invalid_input", message: "a path segment is too long" };
    case "FST_ERR_BAD_URL":
      return { code: "invalid_input", message: "the URL is malformed" };
  }
  if (error instanceof SyntaxError) return { code: "invalid_input", message: "the body is not valid JSON" };
  const status = e.statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return { code: status === 413 ? "payload_too_large" : "invalid_input", message: "bad request" };
  }
  return null;
}

export function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  const { status, body, retryAfterSeconds } = errorBodyOf(error);
  if (retryAfterSeconds !== undefined) void reply.header("retry-after", String(retryAfterSeconds));
  return reply.code(status).type("application/json; charset=utf-8").send(body);
}

/**
 * Fastify's error handler: 5xx are logged with their cause; 4xx are the caller's and logged at debug.
 * A provider outage or refused client credentials relayed to a caller is logged at info, one short
 * line: the engine already logs the failure itself (each refresh attempt, the flag once per
 * process), and an error with a stack for every request that met it buried the log during an outage.
 * A proxied call the provider did not answer is a warning, one line with its transport error.
 */
export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { status, body } = errorBodyOf(error);
  if (error instanceof ProviderUnavailableError && error.cause !== undefined) {
    // No answer to a call of the server's own (a proxied method): no refresh failed, so the engine
    // logged nothing, and at the default level an info line would leave an outage unseen.
    request.log.warn(
      {
        code: body.error.code,
        reason: error.reason,
        detail: body.error.message,
        cause: rootMessage(error.cause),
      },
      "request not served: the provider did not answer",
    );
  } else if (body.error.code === "provider_unavailable" || body.error.code === "provider_misconfigured") {
    const reason = error instanceof ProviderUnavailableError ? error.reason : null;
    request.log.info(
      { code: body.error.code, reason, detail: body.error.message },
      "request not served: the provider's side",
    );
  } else if (status >= 500) request.log.error({ err: error }, "request failed");
  else request.log.debug({ code: (error as { code?: unknown }).code }, "request refused");
  return sendError(reply, error);
}

/** The innermost message of a cause chain (fetch's "fetch failed" wraps the socket's ECONNREFUSED). */
function rootMessage(cause: unknown): string {
  let at = cause;
  for (let depth = 0; depth < 5 && at instanceof Error && at.cause !== undefined; depth++) at = at.cause;
  return at instanceof Error ? at.message : String(at);
}
