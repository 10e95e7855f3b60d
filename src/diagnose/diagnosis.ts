/**
 * What `tokenwarden diagnose` answers, as a value (issue 5). The JSON form is a
 * public contract: `verdict`, `refreshable`, `error`, `token`, `causes`, `fix`.
 */

/** The one-word answer; `unchecked` only for a refresh token that was not spent (it cannot be tested otherwise). */
export type Verdict =
  | "healthy"
  | "expired"
  | "revoked"
  | "inactive"
  | "invalid"
  | "missing_scope"
  | "rate_limited"
  | "unreachable"
  | "misconfigured"
  | "unchecked";

export const VERDICTS = [
  "healthy",
  "expired",
  "revoked",
  "inactive",
  "invalid",
  "missing_scope",
  "rate_limited",
  "unreachable",
  "misconfigured",
  "unchecked",
] as const satisfies readonly Verdict[];

/** Why it happened. Snake_case codes, stable: users grep for them and the README lists them. */
export type CauseCode =
  | "app_uninstalled"
  | "admin_revoked"
  | "access_token_expired"
  | "refresh_token_not_persisted"
  | "refresh_token_reused"
  | "refresh_response_lost"
  | "reinstalled"
  | "leaked_and_auto_revoked"
  | "rotation_not_enabled"
  | "client_credentials_mismatch"
  | "encryption_key_missing"
  | "user_deactivated"
  | "missing_scope"
  | "active_token_limit"
  | "token_unknown"
  | "refresher_not_running"
  | "rate_limited"
  | "provider_unreachable";

export const CAUSE_CODES = [
  "app_uninstalled",
  "admin_revoked",
  "access_token_expired",
  "refresh_token_not_persisted",
  "refresh_token_reused",
  "refresh_response_lost",
  "reinstalled",
  "leaked_and_auto_revoked",
  "rotation_not_enabled",
  "client_credentials_mismatch",
  "encryption_key_missing",
  "user_deactivated",
  "missing_scope",
  "active_token_limit",
  "token_unknown",
  "refresher_not_running",
  "rate_limited",
  "provider_unreachable",
] as const satisfies readonly CauseCode[];

export type Likelihood = "high" | "medium" | "low";

export interface Cause {
  code: CauseCode;
  likelihood: Likelihood;
  explanation: string;
}

/** `bot`/`user` access tokens, `refresh` tokens (`xoxe-`), anything else `unknown`. */
export type TokenKind = "bot" | "user" | "refresh" | "unknown";

export interface Diagnosis {
  verdict: Verdict;
  /**
   * True when a refresh (no person involved) can restore or extend the credential; null when the
   * answer that would tell never came (`diagnose app` with a probe that got a 5xx, a 429 or nothing).
   */
  refreshable: boolean | null;
  /** The provider's error string (`token_revoked`, `ECONNREFUSED`, …); null when there was none. */
  error: string | null;
  token: { kind: TokenKind; rotating: boolean };
  /** Most likely first. */
  causes: Cause[];
  /** Exact steps, in order. */
  fix: string[];
}

const RANK: Record<Likelihood, number> = { high: 0, medium: 1, low: 2 };

/** Orders causes most likely first; among equals, the order they were listed in. */
export function rankCauses(causes: Cause[]): Cause[] {
  return causes
    .map((c, i) => ({ c, i }))
    .sort((a, b) => RANK[a.c.likelihood] - RANK[b.c.likelihood] || a.i - b.i)
    .map(({ c }) => c);
}

/** The documented JSON, keys always in this order (explanations build objects in other orders). */
export function diagnosisJson(d: Diagnosis): Diagnosis {
  return {
    verdict: d.verdict,
    refreshable: d.refreshable,
    error: d.error,
    token: { kind: d.token.kind, rotating: d.token.rotating },
    causes: d.causes.map((c) => ({ code: c.code, likelihood: c.likelihood, explanation: c.explanation })),
    fix: [...d.fix],
  };
}
