/**
 * The I/O half of `diagnose token`: recognise the token (no network), ask
 * Slack (`auth.test`, or with `--refresh` a refresh), then hand the answers to
 * the pure `explainToken`. A refresh token is spent only when asked, and then
 * through the engine if it belongs to a stored connection (persist before use);
 * never when tokenwarden holds it as dead, and, with a store configured, one
 * the store does not hold as current only with `--spend-unknown` (below).
 */
import { timingSafeEqual } from "node:crypto";
import { TokenwardenError } from "../../core/errors.js";
import type { Store } from "../../core/ports.js";
import { Secret } from "../../core/secret.js";
import type { Classification, CredentialKind, StoredCredential, TokenSet } from "../../core/types.js";
import type { Diagnosis } from "../../diagnose/diagnosis.js";
import { explainToken, type RefreshObservation } from "../../diagnose/explain-token.js";
import { recognizeToken, type TokenShape } from "../../diagnose/token-shape.js";
import type { Warden } from "../../engine/warden.js";
import { classifySlackError } from "../../providers/slack/slack-errors.js";
import {
  CLIENT_ID_KEY,
  createSlackProvider,
  type FetchLike,
  type SlackProvider,
} from "../../providers/slack/slack-provider.js";
import { probeClientCredentials } from "./diagnose-app.js";

export interface DiagnoseTokenOptions {
  token: string;
  baseUrl: string;
  requiredScopes?: string[];
  /** Spend a refresh token with these client credentials (`--refresh`). */
  refreshWith?: { clientId: string; clientSecret: string } | null;
  /** Where to look for a connection holding this refresh token, and the warden to refresh it with. */
  stored?: {
    store: Store;
    warden: Warden;
    /** A connection's signed reconnect link (null when the server's public URL is not known). */
    reconnectUrl?: (connectionId: string, provider: string) => string | null;
  } | null;
  /** With `stored`: spend a refresh token the store does not hold as current (`--spend-unknown`). */
  spendUnknown?: boolean;
  fetch?: FetchLike;
  timeoutMs?: number;
}

export interface TokenDiagnosisResult {
  diagnosis: Diagnosis;
  shape: TokenShape;
  /** Only when a refresh token was spent outside any stored connection: the pair to keep. */
  newTokens: TokenSet | null;
  /** Why nothing was sent to Slack, when nothing was; null when Slack was asked. */
  notSent: string | null;
}

// auth.test authenticates with the bearer token only; the provider wants client credentials
// for its other methods, so it gets placeholders that never leave this process for auth.test.
const NO_CLIENT = { clientId: "diagnose", clientSecret: "unused-by-auth.test" };

/**
 * @example
 * const { diagnosis } = await diagnoseToken({ token, baseUrl: "https://slack.com" });
 */
export async function diagnoseToken(o: DiagnoseTokenOptions): Promise<TokenDiagnosisResult> {
  const shape = recognizeToken(o.token);
  const context = { baseUrl: o.baseUrl };
  const signal = () => AbortSignal.timeout(o.timeoutMs ?? 10_000);
  const client = o.refreshWith ?? NO_CLIENT;
  const provider = createSlackProvider({
    ...client,
    baseUrl: o.baseUrl,
    ...(o.fetch === undefined ? {} : { fetch: o.fetch }),
  });
  if (shape.kind === "refresh") {
    if (!o.refreshWith) {
      return {
        diagnosis: explainToken({ shape, context }),
        shape,
        newTokens: null,
        notSent: "a refresh token is spent only with --refresh",
      };
    }
    if (o.stored) {
      const found = await findByRefreshToken(o.stored.store, o.token);
      if (found !== null && found.status === "needs_reauth") {
        const refresh = await storedDeath(o.stored.warden, found, o.stored.reconnectUrl);
        return {
          diagnosis: explainToken({ shape, refresh, context }),
          shape,
          newTokens: null,
          notSent: "tokenwarden has this credential marked needs_reauth",
        };
      }
      if (found !== null) {
        // Checked before the engine sees them: a refresh through the engine with a mistyped secret
        // would flag the provider in the shared store (pausing every instance's refreshes), and one
        // with another app's credentials would have Slack answer invalid_refresh_token, which the
        // engine must believe of a token it cannot tie to a client: the connection would die.
        const refused = await refusedClient(provider, found, client.clientId, signal());
        const refresh = refused ?? (await refreshStored(o.stored.store, o.stored.warden, found));
        return {
          diagnosis: explainToken({ shape, refresh, context }),
          shape,
          newTokens: null,
          notSent: null,
        };
      }
      // The store keeps only each credential's current refresh token, so a token tokenwarden
      // already spent looks unknown here. Inside Slack's grace period that token still works,
      // and spending it again outside the engine makes Slack drop the pair the connection holds
      // now: the connection dies. Only the user can say the token belongs to no stored connection.
      if (o.spendUnknown !== true) {
        throw new TokenwardenError(
          "invalid_input",
          "not spent: this refresh token is not the current one of any connection in the configured store, so it may be one tokenwarden already spent (Slack honours a spent token for a short grace period, and spending it again would kill the connection's current token). Nothing was sent to Slack. If it belongs to no stored connection, run again with --spend-unknown",
        );
      }
    }
    const outcome = await provider.refresh(
      {
        ref: { connectionId: "diagnose", kind: "bot" },
        refreshToken: new Secret(o.token),
        tokenType: "bot",
        scopes: [],
        providerData: {},
      },
      signal(),
    );
    const refresh: RefreshObservation =
      outcome.kind === "refreshed"
        ? { kind: "refreshed", savedToConnection: null }
        : { kind: "failed", classification: outcome.classification };
    return {
      diagnosis: explainToken({ shape, refresh, context }),
      shape,
      newTokens: outcome.kind === "refreshed" ? outcome.tokens : null,
      notSent: null,
    };
  }
  const answer = await provider.check(new Secret(o.token), signal());
  const scopes = answer.kind === "ok" ? answer.providerData["scopes"] : undefined;
  const diagnosis = explainToken({
    shape,
    authTest:
      answer.kind === "ok"
        ? { kind: "ok", scopes: Array.isArray(scopes) ? scopes.filter((s) => typeof s === "string") : null }
        : { kind: "failed", classification: answer.classification },
    ...(o.requiredScopes === undefined ? {} : { requiredScopes: o.requiredScopes }),
    context,
  });
  return { diagnosis, shape, newTokens: null, notSent: null };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Scans stored Slack credentials for this refresh token (decrypting each; fine for a CLI run). */
async function findByRefreshToken(store: Store, token: string): Promise<StoredCredential | null> {
  let cursor: string | undefined;
  for (;;) {
    const page = await store.listConnections({
      provider: "slack",
      limit: 200,
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const connection of page.items) {
      for (const c of await store.listCredentials(connection.id)) {
        if (c.refreshToken !== null && sameSecret(c.refreshToken.reveal(), token)) return c;
      }
    }
    if (page.nextCursor === null) return null;
    cursor = page.nextCursor;
  }
}

/** What the store knows of a dead credential's end: its reason, Slack's answer then, and when. */
async function storedDeath(
  warden: Warden,
  credential: StoredCredential,
  reconnectUrl?: (connectionId: string, provider: string) => string | null,
): Promise<RefreshObservation> {
  const events = await warden.connections.events(credential.connectionId, { limit: 200 });
  const died = events.find(
    (e) => e.type === "needs_reauth" && (e.kind === credential.kind || e.kind === null),
  );
  return {
    kind: "stored_dead",
    connectionId: credential.connectionId,
    credential: credential.kind,
    reason: credential.reason ?? "invalid_auth",
    lastError: credential.lastError,
    sinceMs: died?.atMs ?? null,
    reconnectUrl: reconnectUrl?.(credential.connectionId, credential.provider) ?? null,
  };
}

/**
 * Why the given client credentials cannot refresh this stored credential, found without spending it
 * or writing anything: the probe `diagnose app` makes (a wrong secret, an unknown client, Slack out
 * of reach), or a client id other than the one the credential's tokens were issued to. Null when
 * nothing stands in the way.
 */
async function refusedClient(
  provider: SlackProvider,
  credential: StoredCredential,
  clientId: string,
  signal: AbortSignal,
): Promise<RefreshObservation | null> {
  const issuedTo = credential.providerData[CLIENT_ID_KEY];
  if (typeof issuedTo === "string" && issuedTo !== clientId) {
    return { kind: "failed", classification: CLIENT_ID_MISMATCH };
  }
  const probe = await probeClientCredentials(provider, signal);
  if (probe.kind === "failed" && probe.classification.error !== "invalid_refresh_token") {
    return { kind: "failed", classification: probe.classification };
  }
  return null;
}

const CLIENT_ID_MISMATCH: Classification = {
  kind: "misconfigured",
  reason: "provider_misconfigured",
  error: "client_id_mismatch",
};

/** Refreshes through the engine, so the new pair is committed before anyone sees it (invariant 2). */
async function refreshStored(
  store: Store,
  warden: Warden,
  credential: StoredCredential,
): Promise<RefreshObservation> {
  const ref: { connectionId: string; kind: CredentialKind } = {
    connectionId: credential.connectionId,
    kind: credential.kind,
  };
  const before = await store.getCredential(ref);
  let answered: string | null = null;
  let thrown: unknown = null;
  try {
    const [result] = await warden.connections.refresh(ref.connectionId, { kind: ref.kind });
    answered = result?.error ?? null;
  } catch (error) {
    thrown = error;
  }
  const after = await store.getCredential(ref);
  if (before !== null && after !== null && after.version > before.version && after.lastError === null) {
    return { kind: "refreshed", savedToConnection: ref.connectionId };
  }
  // What this refresh was answered first: the credential's last error may be an older one, and a
  // refusal of the client (bad_client_secret) is recorded on the provider, not the credential.
  const error =
    answered ??
    after?.lastError ??
    (typeof thrown === "object" && thrown !== null && "code" in thrown ? String(thrown.code) : "unknown");
  if (error === CLIENT_ID_MISMATCH.error) return { kind: "failed", classification: CLIENT_ID_MISMATCH };
  return { kind: "failed", classification: classifySlackError(error, 200) };
}
