/**
 * `diagnose token`: from what Slack said about one token to a Diagnosis. Pure:
 * the probes (auth.test, an optional refresh) happen elsewhere and arrive here
 * as observations, so every rule is testable on fixtures.
 */
import type { Classification, CredentialKind, Reason } from "../core/types.js";
import { type Cause, type Diagnosis, rankCauses } from "./diagnosis.js";
import { FIX, type FixContext } from "./fix-steps.js";
import type { TokenShape } from "./token-shape.js";

/** What auth.test answered (through the provider's classification table). */
export type AuthTestObservation =
  | { kind: "ok"; scopes: string[] | null }
  | { kind: "failed"; classification: Classification };

/**
 * What a refresh with the token answered; only ever made with `--refresh`. `stored_dead`: the
 * token is the current refresh token of a stored credential tokenwarden holds as `needs_reauth`,
 * so it was not sent to Slack at all; what is known comes from the store.
 */
export type RefreshObservation =
  | { kind: "refreshed"; savedToConnection: string | null }
  | { kind: "failed"; classification: Classification }
  | {
      kind: "stored_dead";
      connectionId: string;
      credential: CredentialKind;
      reason: Reason;
      /** What Slack answered when the credential died, if it was Slack that said so. */
      lastError: string | null;
      /** When it was marked dead (its needs_reauth event), if the event log still has it. */
      sinceMs: number | null;
      /** Its signed reconnect link, when the server's public URL is known. */
      reconnectUrl?: string | null;
    };

export interface TokenObservation {
  shape: TokenShape;
  /** Absent for a refresh token (auth.test cannot test one without spending it). */
  authTest?: AuthTestObservation;
  /** Present only when the caller asked for the refresh token to be spent. */
  refresh?: RefreshObservation;
  /** Scopes the caller needs (`--scope`); compared with what Slack says the token has. */
  requiredScopes?: string[];
  context: FixContext;
}

const cause = (code: Cause["code"], likelihood: Cause["likelihood"], explanation: string): Cause => ({
  code,
  likelihood,
  explanation,
});

/**
 * Explains one token. Refresh tokens are never judged by auth.test: a verdict
 * on one needs `refresh` (it was spent) or is `unchecked`.
 *
 * @example
 * explainToken({ shape: recognizeToken(t), authTest: { kind: "failed", classification }, context: { baseUrl } });
 */
export function explainToken(o: TokenObservation): Diagnosis {
  const token = { kind: o.shape.kind, rotating: o.shape.rotating };
  if (o.shape.kind === "refresh") return explainRefreshToken(o, token);
  const answer = o.authTest;
  if (answer === undefined) {
    return { verdict: "unchecked", refreshable: false, error: null, token, causes: [], fix: [] };
  }
  if (answer.kind === "ok") return explainWorkingToken(o, token, answer.scopes);
  return explainFailure(o, token, answer.classification);
}

function explainWorkingToken(
  o: TokenObservation,
  token: Diagnosis["token"],
  scopes: string[] | null,
): Diagnosis {
  const missing = (o.requiredScopes ?? []).filter((s) => scopes !== null && !scopes.includes(s));
  if (missing.length > 0) {
    return {
      verdict: "missing_scope",
      refreshable: false,
      error: "missing_scope",
      token,
      causes: [
        cause(
          "missing_scope",
          "high",
          `The token works, but it was granted ${scopes?.length ? scopes.join(", ") : "no scopes"}; it lacks ${missing.join(", ")}. Scopes are fixed at install time: a refresh returns the same scopes.`,
        ),
      ],
      fix: [FIX.addScope(missing), FIX.importNew(o.context), FIX.verify(o.context)],
    };
  }
  const causes: Cause[] = [];
  if (!o.shape.rotating && o.shape.kind !== "unknown") {
    causes.push(
      cause(
        "rotation_not_enabled",
        "low",
        "This is a long-lived token from an app without token rotation: it never expires and there is nothing to refresh. Not a problem unless you expected rotating tokens.",
      ),
    );
  }
  return { verdict: "healthy", refreshable: o.shape.rotating, error: null, token, causes, fix: [] };
}

/**
 * Which causes a Slack error points at, most likely first. Shared with `diagnose connection`
 * (whose stored credentials are tokens; it passes no prefix).
 */
export function causesOfAuthError(
  error: string,
  shape: Pick<TokenShape, "kind" | "rotating"> & { prefix?: string | null },
): Cause[] {
  const user = shape.kind === "user";
  switch (error) {
    case "token_expired":
      return [
        cause(
          "access_token_expired",
          "high",
          "Rotating access tokens live 12 hours (expires_in 43200). This one ran out; its refresh token (not this token) gets a new one.",
        ),
        cause(
          "refresh_token_not_persisted",
          "low",
          "If this happens every 12 hours, the refresh is not running, or it runs but the rotated refresh token it returns is not saved, so the next refresh fails.",
        ),
      ];
    case "token_revoked":
      return rankCauses([
        cause(
          "app_uninstalled",
          user ? "medium" : "low",
          user
            ? "Slack answers token_revoked for a user token when the app was removed from the workspace: every token of the installation died at once."
            : "An uninstall normally makes a bot token answer account_inactive, so it is less likely here, but it revokes every token of the installation.",
        ),
        cause(
          "admin_revoked",
          "medium",
          "A workspace owner or admin revoked this token (admin console, or auth.revoke). With token rotation that kills only this one token; events are not always sent.",
        ),
        ...(shape.rotating
          ? [
              cause(
                "active_token_limit",
                "low",
                "Slack keeps at most 2 unexpired access tokens per installation: refreshing twice more while this one was still valid revoked it (a sign of refreshing too often, or of two systems refreshing the same installation).",
              ),
            ]
          : []),
        cause(
          "leaked_and_auto_revoked",
          shape.rotating ? "low" : "medium",
          "Slack revokes tokens it finds published (a public repository, a paste, a log shipped to a public place). Slack emails the app's collaborators when it does.",
        ),
        cause(
          "reinstalled",
          "low",
          "A reinstall issued new tokens; a copy of an old one kept somewhere (CI, a second service) is no longer valid.",
        ),
      ]);
    case "account_inactive":
      return user
        ? [
            cause(
              "user_deactivated",
              "high",
              "The user who authorized this token was deactivated or deleted; their tokens stop working with them.",
            ),
            cause("app_uninstalled", "low", "Or the workspace itself was deleted."),
          ]
        : [
            cause(
              "app_uninstalled",
              "high",
              "Slack answers account_inactive for a bot token after the app was uninstalled from the workspace (or the workspace was deleted): every token of the installation died.",
            ),
            cause("user_deactivated", "low", "Or the bot user was removed from the workspace by an admin."),
          ];
    case "invalid_auth":
      // A value without any Slack prefix was never a Slack token: no reinstall made it stale.
      if (shape.prefix === null)
        return [
          cause(
            "token_unknown",
            "high",
            "The value does not start with a Slack token prefix (xoxb-, xoxp-, xoxe.…): it is not a token Slack issued. Most often something else was copied (a client or signing secret, a password, an app id) or the start of the token was cut off.",
          ),
          cause(
            "reinstalled",
            "low",
            "If it is an old token with its prefix missing: a reinstall after an uninstall starts a new set of tokens, and old copies answer invalid_auth.",
          ),
        ];
      return [
        cause(
          "reinstalled",
          "high",
          "Slack does not recognise this token at all. The most common reason: the app was uninstalled and installed again, which starts a new set of tokens; old copies answer invalid_auth.",
        ),
        cause(
          "token_unknown",
          "medium",
          "Or the value is not a token Slack issued: truncated or mis-pasted, from another environment (the emulator vs slack.com), or refused because the workspace's IP allowlist does not include this machine.",
        ),
      ];
    case "not_authed":
      return [
        cause(
          "token_unknown",
          "high",
          "Slack saw no token in the request: the value is empty or was lost on the way (a proxy dropping the Authorization header).",
        ),
      ];
    default:
      return [];
  }
}

function explainFailure(o: TokenObservation, token: Diagnosis["token"], c: Classification): Diagnosis {
  const base = { error: c.error, token };
  switch (c.kind) {
    case "refreshable":
      return {
        ...base,
        verdict: "expired",
        refreshable: o.shape.rotating,
        causes: causesOfAuthError(c.error, o.shape),
        fix: [FIX.refreshAndPersist(o.context), FIX.keepRefreshing(o.context), FIX.verify(o.context)],
      };
    case "dead": {
      const verdict =
        c.reason === "account_inactive" ? "inactive" : c.reason === "invalid_auth" ? "invalid" : "revoked";
      return {
        ...base,
        verdict,
        refreshable: false,
        causes: causesOfAuthError(c.error, o.shape),
        fix: [
          // Not a token Slack issued: the value is the first thing to check, before any reinstall.
          ...(o.shape.prefix === null ? [FIX.checkValue()] : []),
          FIX.reinstall(o.context),
          FIX.importNew(o.context),
          FIX.updateSecretStore(),
          FIX.verify(o.context),
        ],
      };
    }
    case "forbidden":
      return {
        ...base,
        verdict: "missing_scope",
        refreshable: false,
        causes: [
          cause(
            "missing_scope",
            "high",
            `Slack answered ${c.error}: the token works but may not do this. Scopes are granted at install time.`,
          ),
        ],
        fix: [FIX.addScope(o.requiredScopes ?? ["the scope the method needs"]), FIX.importNew(o.context)],
      };
    case "misconfigured":
      return {
        ...base,
        verdict: "misconfigured",
        refreshable: false,
        causes: [
          cause(
            "client_credentials_mismatch",
            "high",
            `Slack answered ${c.error}: the request itself is refused, not the token.`,
          ),
        ],
        fix: [FIX.checkApp(o.context)],
      };
    case "transient":
      return transientDiagnosis(o, token, c);
  }
}

function transientDiagnosis(
  o: TokenObservation,
  token: Diagnosis["token"],
  c: Extract<Classification, { kind: "transient" }>,
): Diagnosis {
  const retryAfterSeconds = c.retryAfterMs === undefined ? null : Math.ceil(c.retryAfterMs / 1000);
  if (c.reason === "rate_limited") {
    return {
      verdict: "rate_limited",
      refreshable: o.shape.rotating,
      error: c.error,
      token,
      causes: [
        cause(
          "rate_limited",
          "high",
          `Slack answered HTTP 429 (${c.error})${retryAfterSeconds === null ? "" : `, retry after ${retryAfterSeconds} s`}: too many calls of this method. The token itself was not judged.`,
        ),
      ],
      fix: [FIX.waitAndRetry(retryAfterSeconds)],
    };
  }
  return {
    verdict: "unreachable",
    refreshable: o.shape.rotating,
    error: c.error,
    token,
    causes: [
      cause(
        "provider_unreachable",
        "high",
        `No usable answer from ${o.context.baseUrl} (${c.error}): a network failure, timeout or Slack-side error. The token itself was not judged.`,
      ),
    ],
    fix: [FIX.checkNetwork(o.context)],
  };
}

function explainRefreshToken(o: TokenObservation, token: Diagnosis["token"]): Diagnosis {
  const r = o.refresh;
  if (r === undefined) {
    return {
      verdict: "unchecked",
      refreshable: true,
      error: null,
      token,
      causes: [],
      fix: [FIX.spendRefreshToken()],
    };
  }
  if (r.kind === "refreshed") {
    return {
      verdict: "healthy",
      refreshable: true,
      error: null,
      token,
      causes: [],
      fix:
        r.savedToConnection === null
          ? [
              "The refresh token was spent: store the NEW access token and the NEW refresh token printed with this diagnosis (the NEW TOKENS block; new_tokens with --json), now; the old refresh token stops working after a short grace period.",
              FIX.updateSecretStore(),
            ]
          : [`The new pair was saved to connection ${r.savedToConnection}; nothing else to do.`],
    };
  }
  if (r.kind === "stored_dead") return explainStoredDead(o, token, r);
  const c = r.classification;
  if (c.kind === "dead") {
    return {
      verdict:
        c.reason === "token_revoked" ? "revoked" : c.reason === "account_inactive" ? "inactive" : "invalid",
      refreshable: false,
      error: c.error,
      token,
      causes: causesOfRefreshRefusal(c.error),
      fix: [
        FIX.reinstall(o.context),
        FIX.importNew(o.context),
        FIX.updateSecretStore(),
        FIX.verify(o.context),
      ],
    };
  }
  if (c.kind === "misconfigured") {
    return {
      verdict: "misconfigured",
      refreshable: false,
      error: c.error,
      token,
      causes: [
        cause(
          "client_credentials_mismatch",
          "high",
          c.error === "client_id_mismatch"
            ? "This refresh token was issued to another client id than the one given (tokenwarden recorded its app's client id when it last installed or refreshed it). Slack would refuse it as invalid_refresh_token without spending it, so nothing was sent: it still works with its own app's credentials."
            : `Slack answered ${c.error}: the client id or secret is wrong, so Slack refused before looking at the refresh token — it was not spent and still works with the right credentials.`,
        ),
      ],
      fix: [FIX.fixClientCredentials(), FIX.checkApp(o.context)],
    };
  }
  return explainFailure(o, token, c);
}

/** The cause a stored death reason points at (the same reading `diagnose connection` gives it). */
const CAUSE_OF_DEAD_REASON: Partial<Record<Reason, Cause["code"]>> = {
  app_uninstalled: "app_uninstalled",
  token_revoked: "admin_revoked",
  invalid_refresh_token: "refresh_token_reused",
  invalid_grant: "refresh_token_reused",
  refresh_response_lost: "refresh_response_lost",
  invalid_auth: "reinstalled",
  missing_scope: "missing_scope",
};

function explainStoredDead(
  o: TokenObservation,
  token: Diagnosis["token"],
  r: Extract<RefreshObservation, { kind: "stored_dead" }>,
): Diagnosis {
  const context = {
    ...o.context,
    connectionId: r.connectionId,
    reconnectUrl: r.reconnectUrl ?? null,
    credential: r.credential,
  };
  const code =
    r.reason === "account_inactive"
      ? r.credential === "user"
        ? "user_deactivated"
        : "app_uninstalled"
      : (CAUSE_OF_DEAD_REASON[r.reason] ?? "token_unknown");
  const since = r.sinceMs === null ? "" : ` since ${new Date(r.sinceMs).toISOString()}`;
  const answered = r.lastError === null ? "" : ` (Slack's answer then: ${r.lastError})`;
  return {
    verdict:
      r.reason === "account_inactive"
        ? "inactive"
        : r.reason === "token_revoked" || r.reason === "app_uninstalled"
          ? "revoked"
          : "invalid",
    refreshable: false,
    // Nothing was asked of Slack now; the stored answer is history, told in the cause below.
    error: null,
    token,
    causes: [
      cause(
        code,
        "high",
        `tokenwarden has this token's credential (connection ${r.connectionId}, ${r.credential}) marked dead: needs_reauth, reason ${r.reason}${since}${answered}. Nothing was sent to Slack now: tokenwarden never spends a dead credential's refresh token, and only a person reconnecting revives it. The whole story: tokenwarden diagnose connection ${r.connectionId}`,
      ),
    ],
    fix: [FIX.reinstall(context), FIX.importNew(context), FIX.verify(context)],
  };
}

/** Why Slack refused a refresh token (`invalid_refresh_token`, §3.7), most likely first. */
export function causesOfRefreshRefusal(error: string): Cause[] {
  if (error !== "invalid_refresh_token" && error !== "invalid_grant") return [];
  return [
    cause(
      "refresh_token_reused",
      "high",
      "Refresh tokens are single use: this one was already exchanged (by this app, a second worker, or another system holding a copy) and its short grace period is over. Only the newest token of the chain works.",
    ),
    cause(
      "refresh_token_not_persisted",
      "medium",
      "The refresh that spent it returned a new refresh token which was not saved (only the access token was kept), so the stored refresh token is stale.",
    ),
    cause(
      "app_uninstalled",
      "low",
      "An uninstall (or a revocation with auth.revoke) kills the installation's refresh tokens too.",
    ),
    cause(
      "client_credentials_mismatch",
      "low",
      "A refresh token presented with another app's client id and secret is also invalid_refresh_token: check the credentials belong to the app that issued it.",
    ),
  ];
}
