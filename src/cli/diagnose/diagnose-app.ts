/**
 * The I/O half of `diagnose app`: two probes with deliberately invalid tokens
 * (no side effect at Slack), then the pure `explainApp`.
 */

import type { RefreshOutcome } from "../../core/ports.js";
import { Secret } from "../../core/secret.js";
import type { Diagnosis } from "../../diagnose/diagnosis.js";
import { explainApp } from "../../diagnose/explain-app.js";
import {
  createSlackProvider,
  type FetchLike,
  type SlackProvider,
} from "../../providers/slack/slack-provider.js";

/** Well-formed but never issued: Slack can only answer "invalid" about them, after checking the client. */
const PROBE_REFRESH_TOKEN = "xoxe-1-tokenwarden-diagnose-probe-not-a-real-token";
const PROBE_LEGACY_TOKEN = "xoxb-0-0-tokenwardendiagnoseprobe";

/**
 * Refreshes a token Slack never issued, with the client credentials `provider` holds: Slack checks the
 * client first, so `invalid_refresh_token` means the id and secret are right, `bad_client_secret` or
 * `invalid_client_id` that they are not. Nothing is spent and nothing stored.
 */
export function probeClientCredentials(
  provider: SlackProvider,
  signal: AbortSignal,
): Promise<RefreshOutcome> {
  return provider.refresh(
    {
      ref: { connectionId: "diagnose-app", kind: "bot" },
      refreshToken: new Secret(PROBE_REFRESH_TOKEN),
      tokenType: "bot",
      scopes: [],
      providerData: {},
    },
    signal,
  );
}

export interface DiagnoseAppOptions {
  clientId: string;
  clientSecret: string;
  baseUrl: string;
  fetch?: FetchLike;
  timeoutMs?: number;
}

/**
 * @example
 * const d = await diagnoseApp({ clientId, clientSecret, baseUrl: "https://slack.com" });
 */
export async function diagnoseApp(o: DiagnoseAppOptions): Promise<Diagnosis> {
  const provider = createSlackProvider({
    clientId: o.clientId,
    clientSecret: o.clientSecret,
    baseUrl: o.baseUrl,
    ...(o.fetch === undefined ? {} : { fetch: o.fetch }),
  });
  const signal = () => AbortSignal.timeout(o.timeoutMs ?? 10_000);
  const refresh = await probeClientCredentials(provider, signal());
  const context = { baseUrl: o.baseUrl };
  if (refresh.kind === "refreshed") {
    // Cannot happen with a token Slack never issued; say so rather than guess.
    return explainApp({
      credentials: { kind: "dead", reason: "invalid_refresh_token", error: "invalid_refresh_token" },
      rotation: null,
      context,
    });
  }
  const credentialsOk = refresh.classification.error === "invalid_refresh_token";
  const exchange = credentialsOk
    ? await provider.exchangeLegacyToken(new Secret(PROBE_LEGACY_TOKEN), signal())
    : null;
  return explainApp({
    credentials: refresh.classification,
    rotation: exchange === null || exchange.kind === "refreshed" ? null : exchange.classification,
    context,
  });
}
