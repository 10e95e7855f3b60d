/**
 * `diagnose app`: are the client id and secret right, and is token rotation on?
 * Both probes are made with deliberately invalid tokens, so they change nothing
 * at Slack; their answers tell the cases apart (slack-api.md §2.3.5, §3.6, §3.7).
 */
import type { Classification } from "../core/types.js";
import type { Cause, Diagnosis } from "./diagnosis.js";
import { FIX, type FixContext } from "./fix-steps.js";

export interface AppObservation {
  /**
   * `oauth.v2.access` refresh grant with an invalid refresh token. Slack checks
   * the client id, then the secret, then the token: `invalid_refresh_token`
   * means the credentials passed. (A code grant with an invalid code would not
   * do: Slack rejects the code before it looks at the client id, §2.3.5.)
   */
  credentials: Classification;
  /** `oauth.v2.exchange` with an invalid token: `token_rotation_not_enabled` or `invalid_token` (§3.6). */
  rotation: Classification | null;
  context: FixContext;
}

const token = { kind: "unknown", rotating: false } as const;

/**
 * @example
 * explainApp({ credentials: { kind: "dead", reason: "invalid_refresh_token", error: "invalid_refresh_token" },
 *              rotation: { kind: "transient", reason: "provider_unavailable", error: "invalid_token" }, context });
 * // verdict "healthy", token.rotating true
 */
export function explainApp(o: AppObservation): Diagnosis {
  const c = o.credentials;
  if (c.error === "invalid_client_id" || c.error === "bad_client_secret" || c.kind === "misconfigured") {
    const which =
      c.error === "invalid_client_id"
        ? "Slack does not know this client id"
        : c.error === "bad_client_secret"
          ? "the client id is known but the client secret is wrong (rotated in the app settings, or copied from another app)"
          : `Slack refused the client credentials (${c.error})`;
    return {
      verdict: "misconfigured",
      refreshable: false,
      error: c.error,
      token,
      causes: [
        {
          code: "client_credentials_mismatch",
          likelihood: "high",
          explanation: `${which}. Every refresh and install fails until it is fixed; stored connections are not harmed (Slack refuses before it reads a refresh token).`,
        },
      ],
      fix: [FIX.fixClientCredentials(), FIX.checkApp(o.context)],
    };
  }
  if (c.kind === "transient") {
    return noAnswer(o, c, "No verdict on the credentials: ", "the check");
  }
  const rotationOff = o.rotation?.error === "token_rotation_not_enabled";
  const rotationOn = o.rotation?.error === "invalid_token" || o.rotation?.error === "token_already_exchanged";
  if (!rotationOff && !rotationOn) {
    // A 5xx, a 429 or a timeout says nothing about rotation: "not rotating" would send the
    // operator to change app settings that may be right.
    return noAnswer(
      o,
      o.rotation ?? { kind: "transient", reason: "provider_unavailable", error: "invalid_response" },
      "The client id and secret are right (Slack checked them), but whether token rotation is on could not be determined: ",
      "the rotation probe (oauth.v2.exchange)",
    );
  }
  const causes: Cause[] = [];
  if (rotationOff) {
    causes.push({
      code: "rotation_not_enabled",
      likelihood: "high",
      explanation:
        "The credentials are right, but token rotation is off for this app: its tokens (xoxb-/xoxp-) never expire and come without refresh tokens, so there is nothing to refresh. Any refresh attempt with this app fails.",
    });
  }
  return {
    verdict: "healthy",
    refreshable: rotationOn,
    error: null,
    token: { kind: "unknown", rotating: rotationOn },
    causes,
    fix: rotationOff ? [FIX.enableRotation()] : [],
  };
}

/** A probe got no usable answer: no verdict, and `refreshable` unknown rather than false. */
function noAnswer(o: AppObservation, c: Classification, known: string, probe: string): Diagnosis {
  const limited = c.kind === "transient" && c.reason === "rate_limited";
  const retryAfterMs = c.kind === "transient" ? c.retryAfterMs : undefined;
  return {
    verdict: limited ? "rate_limited" : "unreachable",
    refreshable: null,
    error: c.error,
    token,
    causes: [
      {
        code: limited ? "rate_limited" : "provider_unreachable",
        likelihood: "high",
        explanation: `${known}${limited ? `Slack rate-limited ${probe}` : `no usable answer to ${probe} from ${o.context.baseUrl}`} (${c.error}).`,
      },
    ],
    fix: [
      limited
        ? FIX.waitAndRetry(retryAfterMs === undefined ? null : Math.ceil(retryAfterMs / 1000))
        : FIX.checkNetwork(o.context),
    ],
  };
}
