/**
 * How Slack's error codes are treated (DESIGN.md invariant 4). Slack answers
 * errors as HTTP 200 `{"ok":false,"error":"…"}`, also on `oauth.v2.access`
 * refreshes (slack-api.md §3.7, §4.5), so the body decides, never the HTTP
 * status, except 429 (rate limit, §5) and 5xx (infrastructure, §4.5).
 */
import { type ClassificationRule, fromRule, safeErrorCode, transient } from "../../core/classify.js";
import type { Classification } from "../../core/types.js";

/**
 * The table. Codes per slack-api.md; the *treatment* is ours. Anything not
 * listed is transient: an unknown code never kills a connection.
 */
export const SLACK_ERRORS = {
  // The rotating access token passed `expires_in` (§3.5): refresh once, retry once.
  token_expired: { kind: "refreshable" },

  // Dead until a person reconnects.
  // A revoked token, or a user token of a removed app / deleted user (§4.5).
  token_revoked: { kind: "dead", reason: "token_revoked" },
  // Unknown, used outside its grace window, revoked, or another app's (§3.7).
  invalid_refresh_token: { kind: "dead", reason: "invalid_refresh_token" },
  // A bot token after the app was removed or the workspace deleted (§4.5).
  account_inactive: { kind: "dead", reason: "account_inactive" },
  // We only ever present tokens we stored, so Slack not knowing one means it is
  // gone: the app was reinstalled (old tokens answer invalid_auth, §9 item 7,
  // bolt-python#1029) or the workspace's IP allowlist now refuses us (§4.5).
  // Either way retrying cannot help and a person must act.
  invalid_auth: { kind: "dead", reason: "invalid_auth" },
  // Not a Web API error but an Events API event (§6.3); listed so the events
  // receiver classifies through the same table.
  app_uninstalled: { kind: "dead", reason: "app_uninstalled" },
  // Never sent by Slack (§3.7), but terminal if a standards-style server says it.
  invalid_grant: { kind: "dead", reason: "invalid_grant" },

  // Our app configuration is wrong: flag the provider, not the connections.
  invalid_client_id: { kind: "misconfigured", reason: "provider_misconfigured" },
  bad_client_secret: { kind: "misconfigured", reason: "provider_misconfigured" },
  invalid_client: { kind: "misconfigured", reason: "provider_misconfigured" },
  unauthorized_client: { kind: "misconfigured", reason: "provider_misconfigured" },
  // We sent a grant_type Slack refused: our request is wrong, not the grant (§2.3.5).
  invalid_grant_type: { kind: "misconfigured", reason: "provider_misconfigured" },
  // oauth.v2.exchange on an app without rotation (§3.6).
  token_rotation_not_enabled: { kind: "misconfigured", reason: "provider_misconfigured" },
  // apps.uninstall with a token of another app (§4.4).
  client_id_token_mismatch: { kind: "misconfigured", reason: "provider_misconfigured" },
  // We always send a token; if Slack saw none, our request is broken (§4.5).
  not_authed: { kind: "misconfigured", reason: "provider_misconfigured" },

  // Will pass: back off, honour Retry-After (§5).
  ratelimited: { kind: "transient", reason: "rate_limited" },
  internal_error: { kind: "transient", reason: "provider_unavailable" },
  fatal_error: { kind: "transient", reason: "provider_unavailable" },
  service_unavailable: { kind: "transient", reason: "provider_unavailable" },
  request_timeout: { kind: "transient", reason: "provider_unavailable" },
  // Enterprise migrations: "intermittently unavailable until the transition is complete" (§4.5).
  team_added_to_org: { kind: "transient", reason: "provider_unavailable" },
  org_login_required: { kind: "transient", reason: "provider_unavailable" },

  // The token works but may not do this: the caller's problem, not the lifecycle's.
  missing_scope: { kind: "forbidden", reason: "missing_scope" },
  not_allowed_token_type: { kind: "forbidden", reason: "missing_scope" },
  no_permission: { kind: "forbidden", reason: "missing_scope" },
  team_access_not_granted: { kind: "forbidden", reason: "missing_scope" },
  // auth.revoke: "Incompatible token type provided" (§4.3).
  not_bearer_token: { kind: "forbidden", reason: "missing_scope" },
} as const satisfies Record<string, ClassificationRule>;

export type SlackErrorCode = keyof typeof SLACK_ERRORS;

/**
 * Classifies a Slack answer. 429 is `rate_limited` and 5xx `provider_unavailable`
 * whatever the body says; otherwise the body's `error` code decides, looked up
 * with `Object.hasOwn` because it comes off the wire. Unknown codes, and bodies
 * without one, are transient. `error` in the result is Slack's code, or
 * `http_<status>` when the body had none.
 *
 * @example
 * classifySlackError("token_revoked", 200); // { kind: "dead", reason: "token_revoked", error: "token_revoked" }
 * classifySlackError("ratelimited", 429, 30_000);
 * // { kind: "transient", reason: "rate_limited", error: "ratelimited", retryAfterMs: 30_000 }
 * classifySlackError("constructor", 200); // { kind: "transient", reason: "provider_unavailable", error: "constructor" }
 */
export function classifySlackError(code: unknown, httpStatus: number, retryAfterMs?: number): Classification {
  const error = safeErrorCode(code);
  if (httpStatus === 429) return transient("rate_limited", error ?? "http_429", retryAfterMs);
  if (httpStatus >= 500)
    return transient("provider_unavailable", error ?? `http_${httpStatus}`, retryAfterMs);
  if (error !== null && Object.hasOwn(SLACK_ERRORS, error)) {
    return fromRule(SLACK_ERRORS[error as SlackErrorCode], error, retryAfterMs);
  }
  return transient("provider_unavailable", error ?? `http_${httpStatus}`, retryAfterMs);
}
