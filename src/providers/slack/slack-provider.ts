/**
 * The Slack provider: OAuth v2 with token rotation (slack-api.md §2, §3) and the
 * Web API auth layer (§4). It translates Slack's wire formats and errors once;
 * the engine sees only domain types. It never throws for a Slack answer or a
 * network failure, and never puts a token into an error or a classification.
 */

import { classifyTransportError, parseRetryAfter, transient } from "../../core/classify.js";
import { TokenwardenError } from "../../core/errors.js";
import type { CheckOutcome, Clock, Provider, RefreshInput, RefreshOutcome } from "../../core/ports.js";
import { expiryAfter } from "../../core/refresh-policy.js";
import { Secret } from "../../core/secret.js";
import type { Classification, CredentialKind, TokenSet } from "../../core/types.js";
import { clientFingerprint } from "../client-fingerprint.js";
import { requestFetch } from "../request-fetch.js";
import { classifySlackError } from "./slack-errors.js";

/** The subset of `fetch` the provider uses; tests and proxies may pass their own. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface SlackProviderOptions {
  clientId: string;
  clientSecret: string | Secret;
  /** Slack's origin; `/api/*` and `/oauth/v2/authorize` live below it. Default `https://slack.com`. */
  baseUrl?: string | undefined;
  /** Default: undici's `request` behind the slice of `fetch` we use (see request-fetch.ts). */
  fetch?: FetchLike | undefined;
  /**
   * How client credentials travel to `oauth.v2.access` (§2.3.1). `body` (default)
   * is what node's `@slack/oauth` sends; `basic` is what Slack recommends and the
   * python and java SDKs send. Slack accepts both.
   */
  clientAuth?: "body" | "basic" | undefined;
  /** Source of time for `expires_in` → `expiresAtMs`. Default: the system clock. */
  clock?: Clock | undefined;
}

/** A token set from an install, with the Slack identity it belongs to. */
export type SlackBotTokens = TokenSet & { botUserId: string | null };
export type SlackUserTokens = TokenSet & { userId: string };

/** What an `oauth.v2.access` code exchange installed (§2.3.3). No secret outside `Secret`s. */
export interface SlackInstallation {
  appId: string | null;
  /** The client id that exchanged the code: its tokens refresh with this app's credentials only. */
  clientId: string;
  /** null for an org-wide (enterprise) install. */
  teamId: string | null;
  teamName: string | null;
  enterpriseId: string | null;
  enterpriseName: string | null;
  isEnterpriseInstall: boolean;
  /** The user who installed (always present, §2.3.3). */
  authedUserId: string | null;
  bot?: SlackBotTokens;
  user?: SlackUserTokens;
}

export type SlackExchangeResult =
  | { kind: "installed"; installation: SlackInstallation }
  | { kind: "failed"; classification: Classification };

export interface AuthorizeUrlOptions {
  state: string;
  redirectUri?: string | undefined;
  /** Bot scopes, joined with "," (§2.1). */
  scopes: readonly string[];
  /** User scopes, joined with ",". */
  userScopes?: readonly string[] | undefined;
  /** Team id to preselect the workspace. */
  team?: string | undefined;
  /** PKCE S256 challenge (§2.4). */
  codeChallenge?: string | undefined;
}

export interface ExchangeCodeOptions {
  code: string;
  /** Must equal the one sent to authorize, if one was sent (§2.1). */
  redirectUri?: string | undefined;
  /** PKCE verifier (§2.4). */
  codeVerifier?: string | undefined;
}

/** The Slack provider: the `Provider` port plus the install flow the server needs. */
export interface SlackProvider extends Provider {
  readonly id: "slack";
  /** The URL to send a person to for an install or reconnect. */
  authorizeUrl(options: AuthorizeUrlOptions): string;
  /** Exchanges an OAuth `code` for tokens. Never throws for Slack answers or network failures. */
  exchangeCode(options: ExchangeCodeOptions, signal: AbortSignal): Promise<SlackExchangeResult>;
  /** Exchanges a long-lived `xoxb-`/`xoxp-` token for a rotating pair (`oauth.v2.exchange`, §3.6). */
  exchangeLegacyToken(token: Secret, signal: AbortSignal): Promise<RefreshOutcome>;
}

/** A JSON object off the wire; the fields this adapter reads are named so they read as properties. */
interface JsonObject {
  [key: string]: unknown;
  ok?: unknown;
  error?: unknown;
  access_token?: unknown;
  refresh_token?: unknown;
  expires_in?: unknown;
  token_type?: unknown;
  scope?: unknown;
  authed_user?: unknown;
  bot_user_id?: unknown;
  app_id?: unknown;
  team?: unknown;
  enterprise?: unknown;
  id?: unknown;
  name?: unknown;
  revoked?: unknown;
  is_enterprise_install?: unknown;
}

/** Headers a call adds to the defaults. */
interface ExtraHeaders {
  authorization?: string;
}

type CallResult =
  | { kind: "ok"; body: JsonObject; sentAtMs: number; scopesHeader: string | null }
  | { kind: "failed"; classification: Classification; mayHaveReachedProvider: boolean };

const SYSTEM_CLOCK: Clock = { now: () => Date.now() };

function asObject(v: unknown): JsonObject | null {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as JsonObject) : null;
}

/** A non-empty string; one holding NUL is no value (PostgreSQL can keep none, and Slack sends none). */
function asString(v: unknown): string | null {
  return typeof v === "string" && v !== "" && !v.includes("\u0000") ? v : null;
}

/** `expires_in` in seconds; Slack sends an int (43200, or 43201 in SDK fixtures, §2.3.4). */
function asSeconds(v: unknown): number | null {
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : null;
}

function splitScopes(v: unknown): string[] | null {
  if (typeof v !== "string") return null;
  return v
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "" && !s.includes("\u0000"));
}

/** Pairs of (Slack's key, our key). */
type KeyMap = ReadonlyArray<readonly [string, string]>;

const APP_KEYS: KeyMap = [
  ["app_id", "app_id"],
  ["is_enterprise_install", "is_enterprise_install"],
];
const TEAM_KEYS: KeyMap = [
  ["id", "team_id"],
  ["name", "team_name"],
];
const ENTERPRISE_KEYS: KeyMap = [
  ["id", "enterprise_id"],
  ["name", "enterprise_name"],
];
const NESTED_USER_KEYS: KeyMap = [["id", "user_id"]];
const FLAT_IDENTITY_KEYS: KeyMap = [
  ["bot_user_id", "bot_user_id"],
  ["user_id", "user_id"],
];
const AUTH_TEST_KEYS: KeyMap = [
  ["team_id", "team_id"],
  ["team", "team_name"],
  ["user_id", "user_id"],
  ["bot_id", "bot_id"],
  ["enterprise_id", "enterprise_id"],
  ["url", "url"],
  ["is_enterprise_install", "is_enterprise_install"],
];

/** Copies into `out` the listed keys that hold a string or boolean: ids and names, never tokens. */
function pick(src: JsonObject | null, keys: KeyMap, out: JsonObject = {}): JsonObject {
  if (src === null) return out;
  for (const [from, to] of keys) {
    const v = src[from];
    if (asString(v) !== null || typeof v === "boolean") out[to] = v;
  }
  return out;
}

/** Non-secret facts of an `oauth.v2.access` reply (team, enterprise, app), copied into `out`. */
function installFacts(body: JsonObject): JsonObject {
  const out = pick(body, APP_KEYS);
  pick(asObject(body.team), TEAM_KEYS, out);
  return pick(asObject(body.enterprise), ENTERPRISE_KEYS, out);
}

function toTokenSet(
  src: JsonObject,
  sentAtMs: number,
  fallback: { tokenType: string; scopes: string[] },
): TokenSet | null {
  const accessToken = asString(src.access_token);
  if (accessToken === null) return null;
  const refreshToken = asString(src.refresh_token);
  const expiresIn = asSeconds(src.expires_in);
  return {
    accessToken: new Secret(accessToken),
    // None in the reply: the engine keeps the previous refresh token (invariant 2).
    refreshToken: refreshToken === null ? null : new Secret(refreshToken),
    tokenType: asString(src.token_type) ?? fallback.tokenType,
    // Counted from when the request was sent, not received: the token's life began
    // in between, so this can only err early (the SDKs use receipt time, §7.5).
    expiresAtMs: expiresIn === null ? null : expiryAfter(sentAtMs, expiresIn),
    scopes: splitScopes(src.scope) ?? fallback.scopes,
  };
}

/**
 * Finds the refreshed token in a reply. Slack's refresh replies are flat, for
 * user tokens too (§3.3); one third-party client claims some come nested under
 * `authed_user`, so both are accepted. If both shapes appear, the one whose
 * `token_type` matches the credential kind wins.
 */
function refreshedTokenSource(
  body: JsonObject,
  kind: CredentialKind,
): { src: JsonObject; nested: boolean } | null {
  const flat = asString(body.access_token) === null ? null : body;
  const authedUser = asObject(body.authed_user);
  const nested = authedUser !== null && asString(authedUser.access_token) !== null ? authedUser : null;
  if (flat !== null && nested !== null && kind === "user" && flat.token_type !== "user") {
    return { src: nested, nested: true };
  }
  if (flat !== null) return { src: flat, nested: false };
  if (nested !== null) return { src: nested, nested: true };
  return null;
}

function refreshOutcomeOf(
  body: JsonObject,
  sentAtMs: number,
  kind: CredentialKind,
  fallback: { tokenType: string; scopes: string[] },
  clientId: string,
): RefreshOutcome {
  const found = refreshedTokenSource(body, kind);
  const tokens = found === null ? null : toTokenSet(found.src, sentAtMs, fallback);
  if (found === null || tokens === null) {
    // ok:true without a token: Slack took the refresh token and we cannot tell
    // what it gave for it, so the outcome is in doubt.
    return {
      kind: "failed",
      classification: transient("provider_unavailable", "invalid_response"),
      mayHaveReachedProvider: true,
    };
  }
  const providerData = installFacts(body);
  pick(found.src, found.nested ? NESTED_USER_KEYS : FLAT_IDENTITY_KEYS, providerData);
  providerData[CLIENT_ID_KEY] = clientId;
  return { kind: "refreshed", tokens, providerData };
}

/**
 * The provider data key of the client id a credential's tokens were last issued to (by an install
 * through tokenwarden, or a refresh): Slack refreshes a token only for the app it was issued to.
 */
export const CLIENT_ID_KEY = "client_id";

/**
 * Slack answers `invalid_refresh_token` to a refresh token of another app, and spends nothing
 * (§3.3's table). Sent by a warden running another app's credentials (the staging app's, left in
 * a production deploy), that answer says nothing of the token: it is a mismatch between this
 * warden's client and that credential, which is held back and retried (never declared dead). Not
 * the whole provider: one leftover credential of an old app must not stop every other refresh.
 * Known only for tokens that tokenwarden has installed or refreshed before (an imported one names
 * no client).
 */
function refusedAsAnotherClients(
  failed: Extract<CallResult, { kind: "failed" }>,
  issuedTo: unknown,
  clientId: string,
): Extract<CallResult, { kind: "failed" }> {
  const c = failed.classification;
  if (c.kind !== "dead" || c.error !== "invalid_refresh_token") return failed;
  if (typeof issuedTo !== "string" || issuedTo === clientId) return failed;
  return {
    kind: "failed",
    classification: {
      kind: "misconfigured",
      reason: "provider_misconfigured",
      error: "client_id_mismatch",
      scope: "credential",
    },
    mayHaveReachedProvider: false,
  };
}

/**
 * Creates the Slack provider.
 *
 * @example
 * const slack = createSlackProvider({ clientId, clientSecret, baseUrl: emulator.url, clock });
 * const outcome = await slack.refresh(input, AbortSignal.timeout(10_000));
 * if (outcome.kind === "failed" && outcome.classification.kind === "dead") markNeedsReauth();
 */
export function createSlackProvider(options: SlackProviderOptions): SlackProvider {
  if (options.clientId === "") throw new TokenwardenError("config_invalid", "Slack clientId is empty");
  const clientId = options.clientId;
  const clientSecret =
    typeof options.clientSecret === "string" ? new Secret(options.clientSecret) : options.clientSecret;
  if (clientSecret.reveal() === "")
    throw new TokenwardenError("config_invalid", "Slack clientSecret is empty");
  const baseUrl = (options.baseUrl ?? "https://slack.com").replace(/\/+$/, "");
  const doFetch: FetchLike = options.fetch ?? requestFetch;
  const clientAuth = options.clientAuth ?? "body";
  const clock = options.clock ?? SYSTEM_CLOCK;

  /**
   * A form body with the client credentials per §2.3.1: as form params, or as HTTP Basic with the
   * form left without them.
   */
  function withClient(params: string, headers: ExtraHeaders): string {
    if (clientAuth === "basic") {
      // Raw id:secret, as the python and java SDKs send it; Slack's ids and
      // secrets hold no characters that RFC 6749 §2.3.1's form-encoding would change.
      const basic = Buffer.from(`${clientId}:${clientSecret.reveal()}`, "utf8").toString("base64");
      headers.authorization = `Basic ${basic}`;
      return params;
    }
    const client = `client_id=${encodeURIComponent(clientId)}&client_secret=${encodeURIComponent(clientSecret.reveal())}`;
    return params === "" ? client : `${params}&${client}`;
  }

  /**
   * POSTs to a Web API method and sorts the answer: `ok` with the body, or a
   * classified failure. Only HTTP 429 and 5xx override the body (§3.7, §4.5).
   */
  async function call(
    method: string,
    form: string,
    headers: ExtraHeaders,
    signal: AbortSignal,
  ): Promise<CallResult> {
    if (signal.aborted) {
      return {
        kind: "failed",
        classification: transient("provider_unavailable", "aborted"),
        mayHaveReachedProvider: false,
      };
    }
    const sentAtMs = clock.now();
    let status: number;
    let retryAfterHeader: string | null;
    let scopesHeader: string | null;
    let text: string;
    try {
      const res = await doFetch(`${baseUrl}/api/${method}`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json",
          ...headers,
        },
        body: form,
        signal,
        // A redirect would turn the POST into a GET and drop the form; report it instead.
        redirect: "manual",
      });
      status = res.status;
      retryAfterHeader = res.headers.get("retry-after");
      scopesHeader = res.headers.get("x-oauth-scopes");
      text = await res.text();
    } catch (error) {
      return { kind: "failed", ...classifyTransportError(error, signal.aborted) };
    }
    const retryAfterMs = parseRetryAfter(retryAfterHeader, clock.now());
    let body: JsonObject | null = null;
    try {
      body = asObject(JSON.parse(text));
    } catch {
      body = null; // HTML error pages ("Server Error | Slack", §4.5), proxies, truncation
    }
    if (status >= 200 && status < 300 && body?.ok === true)
      return { kind: "ok", body, sentAtMs, scopesHeader };
    if (body === null && status < 500 && status !== 429) {
      const error = status >= 200 && status < 300 ? "invalid_response" : `http_${status}`;
      return {
        kind: "failed",
        classification: transient("provider_unavailable", error),
        mayHaveReachedProvider: true,
      };
    }
    const ok2xx = status >= 200 && status < 300;
    const classification =
      ok2xx && typeof body?.error !== "string"
        ? transient("provider_unavailable", "invalid_response")
        : classifySlackError(body?.error, status, retryAfterMs);
    // The outcome is unknown after a 5xx, an unreadable answer, or an error Slack
    // says may have half-succeeded (fatal_error); a definite refusal or a 429 is known.
    const mayHaveReachedProvider =
      classification.kind === "transient" && classification.reason === "provider_unavailable";
    return { kind: "failed", classification, mayHaveReachedProvider };
  }

  async function withBearer(method: string, token: Secret, signal: AbortSignal): Promise<CallResult> {
    return call(method, "", { authorization: `Bearer ${token.reveal()}` }, signal);
  }

  return {
    id: "slack",

    async refresh(input: RefreshInput, signal: AbortSignal): Promise<RefreshOutcome> {
      // §3.3: grant_type + refresh_token, client credentials still required. Built as a string: it
      // is sent once per refresh, and a URLSearchParams costs more than the rest of the form.
      const headers: ExtraHeaders = {};
      const form = withClient(
        `grant_type=refresh_token&refresh_token=${encodeURIComponent(input.refreshToken.reveal())}`,
        headers,
      );
      const r = await call("oauth.v2.access", form, headers, signal);
      if (r.kind === "failed") return refusedAsAnotherClients(r, input.providerData[CLIENT_ID_KEY], clientId);
      return refreshOutcomeOf(
        r.body,
        r.sentAtMs,
        input.ref.kind,
        { tokenType: input.tokenType, scopes: input.scopes },
        clientId,
      );
    },

    async check(accessToken: Secret, signal: AbortSignal): Promise<CheckOutcome> {
      const r = await withBearer("auth.test", accessToken, signal);
      if (r.kind === "failed") return { kind: "failed", classification: r.classification };
      // §4.2; for a bot token user_id is the bot user's id.
      const providerData = pick(r.body, AUTH_TEST_KEYS);
      // `x-oauth-scopes` comes with every authenticated answer (§4.1): what the token may do,
      // read here so `diagnose` can name a missing scope without calling a scoped method.
      const scopes = splitScopes(r.scopesHeader);
      if (scopes !== null) providerData["scopes"] = scopes;
      const installation: Record<string, string> = {};
      for (const key of ["team_id", "enterprise_id"] as const) {
        const v = providerData[key];
        if (typeof v === "string") installation[key] = v;
      }
      // A user token's answer names its member and no bot (§4.2); a bot token's user_id is its bot
      // user. The member is what the install flow tells a reconnecting member's own connection by,
      // and a user token imported without it may not learn it from a refresh: §3.3's user_id has not
      // been seen in a captured answer.
      const userId = asString(r.body["user_id"]);
      const credential: Record<string, string> =
        userId !== null && asString(r.body["bot_id"]) === null ? { user_id: userId } : {};
      return { kind: "ok", providerData, installation, credential };
    },

    async revoke(accessToken: Secret, signal: AbortSignal): Promise<CheckOutcome> {
      const r = await withBearer("auth.revoke", accessToken, signal);
      if (r.kind === "failed") return { kind: "failed", classification: r.classification };
      return { kind: "ok", providerData: { revoked: r.body.revoked === true } };
    },

    classifyApiError(error: string, httpStatus: number, retryAfterMs?: number): Classification {
      return classifySlackError(error, httpStatus, retryAfterMs);
    },

    issuedToThisClient(providerData: Record<string, unknown>): boolean | undefined {
      const issuedTo = providerData[CLIENT_ID_KEY];
      return typeof issuedTo === "string" ? issuedTo === clientId : undefined;
    },

    clientFingerprint: clientFingerprint(clientId, clientSecret.reveal()),

    credentialKinds: ["bot", "user"],

    authorizeUrl(o: AuthorizeUrlOptions): string {
      const params = new URLSearchParams({ client_id: clientId, scope: o.scopes.join(",") });
      if (o.userScopes !== undefined && o.userScopes.length > 0)
        params.set("user_scope", o.userScopes.join(","));
      if (o.redirectUri !== undefined) params.set("redirect_uri", o.redirectUri);
      params.set("state", o.state);
      if (o.team !== undefined) params.set("team", o.team);
      if (o.codeChallenge !== undefined) {
        params.set("code_challenge", o.codeChallenge);
        params.set("code_challenge_method", "S256");
      }
      return `${baseUrl}/oauth/v2/authorize?${params.toString()}`;
    },

    async exchangeCode(o: ExchangeCodeOptions, signal: AbortSignal): Promise<SlackExchangeResult> {
      const form = new URLSearchParams({ grant_type: "authorization_code", code: o.code });
      if (o.redirectUri !== undefined) form.set("redirect_uri", o.redirectUri);
      if (o.codeVerifier !== undefined) form.set("code_verifier", o.codeVerifier);
      const headers: ExtraHeaders = {};
      const r = await call("oauth.v2.access", withClient(form.toString(), headers), headers, signal);
      if (r.kind === "failed") return { kind: "failed", classification: r.classification };
      const installation = installationOf(r.body, r.sentAtMs, clientId);
      if (installation === null) {
        return { kind: "failed", classification: transient("provider_unavailable", "invalid_response") };
      }
      return { kind: "installed", installation };
    },

    async exchangeLegacyToken(token: Secret, signal: AbortSignal): Promise<RefreshOutcome> {
      const form = new URLSearchParams({ token: token.reveal() });
      const headers: ExtraHeaders = {};
      const r = await call("oauth.v2.exchange", withClient(form.toString(), headers), headers, signal);
      if (r.kind === "failed") return r;
      const tokenType = asString(r.body.token_type) ?? "bot";
      return refreshOutcomeOf(
        r.body,
        r.sentAtMs,
        tokenType === "user" ? "user" : "bot",
        { tokenType, scopes: [] },
        clientId,
      );
    },
  };
}

/** Reads an install reply (§2.3.3, §2.3.4): bot token at top level, user token under `authed_user`. */
function installationOf(body: JsonObject, sentAtMs: number, clientId: string): SlackInstallation | null {
  const team = asObject(body.team);
  const enterprise = asObject(body.enterprise);
  const authedUser = asObject(body.authed_user);
  const installation: SlackInstallation = {
    appId: asString(body.app_id),
    clientId,
    teamId: asString(team?.id),
    teamName: asString(team?.name),
    enterpriseId: asString(enterprise?.id),
    enterpriseName: asString(enterprise?.name),
    isEnterpriseInstall: body.is_enterprise_install === true,
    authedUserId: asString(authedUser?.id),
  };
  // A top-level token is the bot's unless Slack says otherwise (§2.5's user-only
  // method puts a user token there, with token_type "user").
  const top = toTokenSet(body, sentAtMs, { tokenType: "bot", scopes: [] });
  if (top !== null && top.tokenType !== "user") {
    installation.bot = { ...top, botUserId: asString(body.bot_user_id) };
  }
  const userSrc = authedUser !== null && asString(authedUser.access_token) !== null ? authedUser : null;
  const userTokens =
    userSrc === null ? null : toTokenSet(userSrc, sentAtMs, { tokenType: "user", scopes: [] });
  const userId = asString(authedUser?.id);
  if (userTokens !== null && userId !== null) {
    installation.user = { ...userTokens, userId };
  } else if (top !== null && top.tokenType === "user" && userId !== null) {
    installation.user = { ...top, userId };
  }
  if (installation.bot === undefined && installation.user === undefined) return null;
  return installation;
}
