// OAuth v2: the authorize step (slack-api.md §2.1–2.2), `oauth.v2.access` with both grants (§2.3, §3.3)
// and `oauth.v2.exchange` (§3.6).
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { clientCredentials, secretsEqual } from "./client-auth.js";
import { renderConsentPage, renderErrorPage } from "./consent-page.js";
import type { ApiCall, EmulatorContext, PendingConsent, Reply } from "./context.js";
import { errorReply, okReply } from "./context.js";
import { redirect, sendHtml, stringArg } from "./http-io.js";
import { newOpaqueId } from "./identifiers.js";
import type { AppRecord } from "./model.js";
import { isAllowedRedirect } from "./redirect-urls.js";

/** Comma-separated (§2.1); the python SDK sends empty `scope=` / `user_scope=`, which must be accepted. */
function splitScopes(raw: string | null): string[] {
  if (raw === null) return [];
  return raw
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** `GET /oauth/v2/authorize`: a consent page, or (auto-approve / deny) an immediate redirect. */
export function handleAuthorize(ctx: EmulatorContext, query: URLSearchParams, res: ServerResponse) {
  const bad = (error: string, detail: string) => sendHtml(res, renderErrorPage(error, detail), 400);
  const clientId = query.get("client_id") ?? "";
  const app = ctx.state.apps.get(clientId);
  if (app === undefined) return bad("invalid_client_id", `No app has the client_id "${clientId}".`);
  const botScopes = splitScopes(query.get("scope"));
  const userScopes = splitScopes(query.get("user_scope"));
  if (botScopes.length === 0 && userScopes.length === 0) {
    return bad("invalid_scope", "Ask for at least one scope in scope or user_scope.");
  }
  const redirectUriSent = query.get("redirect_uri") || null;
  if (redirectUriSent !== null && !isAllowedRedirect(app.redirectUrls, redirectUriSent)) {
    return bad(
      "bad_redirect_uri",
      `redirect_uri does not match a Redirect URL of the app: ${app.redirectUrls.join(", ")}`,
    );
  }
  const redirectUri = redirectUriSent ?? app.redirectUrls[0];
  if (redirectUri === undefined) return bad("bad_redirect_uri", "The app has no Redirect URL configured.");
  const codeChallenge = query.get("code_challenge") || null;
  if (codeChallenge !== null && (query.get("code_challenge_method") ?? "S256") !== "S256") {
    return bad("invalid_code_challenge_method", "Only S256 is supported (§2.4).");
  }
  const requestedTeam = query.get("team");
  const teamId =
    requestedTeam !== null && ctx.state.teams.has(requestedTeam)
      ? requestedTeam // §2.1: honoured when the user is signed in to it, otherwise ignored
      : (ctx.authorize.teamId ?? ctx.state.teams.keys().next().value);
  if (teamId === undefined) return bad("invalid_team", "The emulator has no workspace.");
  const userId = pickUser(ctx, teamId);
  if (userId === null) return bad("invalid_user", `Workspace ${teamId} has no active user.`);
  const team = ctx.state.teams.get(teamId);
  const enterpriseInstall = ctx.authorize.enterpriseInstall && team?.enterpriseId !== null;
  const pending: PendingConsent = {
    appId: app.appId,
    clientId: app.clientId,
    redirectUri,
    redirectUriSent,
    state: query.get("state"),
    teamId,
    userId,
    enterpriseInstall,
    botScopes,
    userScopes,
    codeChallenge,
  };
  // Per-request override, so one test can deny while others approve.
  const override = query.get("emulator_decision");
  const mode = override === "approve" || override === "deny" ? override : ctx.authorize.mode;
  if (mode !== "consent") return redirect(res, decide(ctx, pending, mode === "approve"));
  const requestId = newOpaqueId();
  ctx.pendingConsents.set(requestId, pending);
  sendHtml(
    res,
    renderConsentPage({
      requestId,
      appName: app.name,
      teamName: team?.name ?? teamId,
      userName: ctx.state.users.get(userId)?.name ?? userId,
      enterpriseInstall,
      botScopes,
      userScopes,
      redirectUri,
    }),
  );
}

function pickUser(ctx: EmulatorContext, teamId: string): string | null {
  const chosen = ctx.authorize.userId === null ? undefined : ctx.state.users.get(ctx.authorize.userId);
  if (chosen !== undefined && chosen.teamId === teamId) return chosen.userId;
  for (const u of ctx.state.users.values()) if (u.teamId === teamId && !u.deactivated) return u.userId;
  return null;
}

/** The consent form's POST: redirect with a code, or with `error=access_denied` (§2.2). */
export function handleDecision(ctx: EmulatorContext, form: URLSearchParams, res: ServerResponse) {
  const pending = ctx.pendingConsents.get(form.get("request") ?? "");
  if (pending === undefined) {
    return sendHtml(res, renderErrorPage("invalid_request", "This consent screen expired or was used."), 400);
  }
  ctx.pendingConsents.delete(form.get("request") ?? "");
  redirect(res, decide(ctx, pending, form.get("decision") === "allow"));
}

function decide(ctx: EmulatorContext, p: PendingConsent, approved: boolean): string {
  const url = new URL(p.redirectUri);
  if (approved) {
    const code = ctx.state.issueCode({
      appId: p.appId,
      redirectUriSent: p.redirectUriSent,
      teamId: p.teamId,
      userId: p.userId,
      enterpriseInstall: p.enterpriseInstall,
      botScopes: p.botScopes,
      userScopes: p.userScopes,
      codeChallenge: p.codeChallenge,
    });
    url.searchParams.set("code", code);
  } else {
    url.searchParams.set("error", "access_denied");
  }
  // RFC 6749 §4.1.2.1 requires state on errors too; Slack's behaviour there is [U] (§2.2).
  if (p.state !== null) url.searchParams.set("state", p.state);
  return url.toString();
}

function checkSecret(app: AppRecord, secret: string | undefined, publicClientAllowed: boolean): Reply | null {
  if (secret === undefined && publicClientAllowed) return null; // PKCE public client (§2.3.1)
  return secretsEqual(secret, app.clientSecret) ? null : errorReply("bad_client_secret");
}

/** `oauth.v2.access`: the code grant (§2.3) and the refresh grant (§3.3). */
export function oauthV2Access(call: ApiCall): Reply {
  const { ctx, req } = call;
  const args = call.parsed.args;
  const grantType = stringArg(args, "grant_type") ?? "authorization_code";
  if (grantType !== "authorization_code" && grantType !== "refresh_token")
    return errorReply("invalid_grant_type");
  const { clientId, clientSecret } = clientCredentials(req, args);

  if (grantType === "refresh_token") {
    const app = clientId === undefined ? undefined : ctx.state.apps.get(clientId);
    if (app === undefined) return errorReply("invalid_client_id");
    const secretProblem = checkSecret(app, clientSecret, app.pkce);
    if (secretProblem !== null) return secretProblem;
    const refreshToken = stringArg(args, "refresh_token");
    if (refreshToken === undefined) {
      ctx.counters.invalidRefreshTokenAnswers++;
      return errorReply("invalid_refresh_token"); // [U] §3.7: could be invalid_arguments
    }
    const result = ctx.state.refresh(app, refreshToken);
    return result.ok ? okReply(result.value) : errorReply(result.error);
  }

  // Code grant. Order [U] (§2.3.5): the code is checked before the client id, as observed on Slack.
  const code = ctx.state.findUsableCode(stringArg(args, "code") ?? "");
  if (code === null) return errorReply("invalid_code"); // unknown, expired or reused (not code_already_used)
  const app = clientId === undefined ? undefined : ctx.state.apps.get(clientId);
  if (app === undefined) return errorReply("invalid_client_id");
  if (app.appId !== code.appId) return errorReply("invalid_code");
  const verifier = stringArg(args, "code_verifier");
  const secretProblem = checkSecret(app, clientSecret, app.pkce && verifier !== undefined);
  if (secretProblem !== null) return secretProblem;
  const redirectUri = stringArg(args, "redirect_uri");
  if (
    code.redirectUriSent !== null
      ? redirectUri !== code.redirectUriSent
      : redirectUri !== undefined && !isAllowedRedirect(app.redirectUrls, redirectUri)
  ) {
    return errorReply("bad_redirect_uri");
  }
  if (code.codeChallenge !== null) {
    if (!app.pkce) return errorReply("pkce_not_allowed");
    const computed = verifier === undefined ? "" : createHash("sha256").update(verifier).digest("base64url");
    if (computed !== code.codeChallenge) return errorReply("invalid_code_verifier");
  }
  code.used = true;
  const body = ctx.state.install({
    clientId: app.clientId,
    teamId: code.teamId,
    userId: code.userId,
    enterpriseInstall: code.enterpriseInstall,
    botScopes: code.botScopes,
    userScopes: code.userScopes,
  });
  return okReply(body);
}

/** `oauth.v2.exchange`: a long-lived token for a rotating pair (§3.6). */
export function oauthV2Exchange(call: ApiCall): Reply {
  const { ctx, req } = call;
  const { clientId, clientSecret } = clientCredentials(req, call.parsed.args);
  const app = clientId === undefined ? undefined : ctx.state.apps.get(clientId);
  if (app === undefined) return errorReply("invalid_client_id");
  const secretProblem = checkSecret(app, clientSecret, false);
  if (secretProblem !== null) return secretProblem;
  // The legacy token travels as a parameter (§3.6), not as the bearer; accept the bearer too.
  const token = call.parsed.bodyToken ?? call.parsed.queryToken ?? bearerOf(req);
  if (token === undefined) return errorReply("invalid_token");
  const result = ctx.state.exchange(app, token);
  return result.ok ? okReply(result.value) : errorReply(result.error);
}

function bearerOf(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith("Bearer ") ? h.slice(7) : undefined;
}
