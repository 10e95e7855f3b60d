// The Web API auth layer (slack-api.md §4.5, check order §4.6 steps 3–8) and the emulated methods:
// auth.test (§4.2), auth.revoke (§4.3), apps.uninstall (§4.4), and just enough of chat.postMessage,
// conversations.list and users.info to test a proxy and scopes.
import { clientCredentials, secretsEqual } from "./client-auth.js";
import type { ApiCall, Reply } from "./context.js";
import { errorReply, okReply } from "./context.js";
import { stringArg } from "./http-io.js";
import type { TokenKind } from "./model.js";
import type { Authenticated } from "./state.js";

interface WebApiMethod {
  /** The scope the method needs (§4.6 step 7); null for none. */
  scope: string | null;
  /** Token kinds allowed (§4.6 step 6). */
  tokenKinds: readonly TokenKind[];
  handle(call: ApiCall, auth: Authenticated): Reply;
}

/** `Authorization: Bearer` (case-sensitive, §4.1), else the form-body `token`; a query token is refused. */
function extractToken(call: ApiCall): { token: string } | { error: string } {
  const header = call.req.headers.authorization;
  if (header?.startsWith("Bearer ")) return { token: header.slice(7).trim() };
  if (call.parsed.bodyToken !== null) return { token: call.parsed.bodyToken };
  // Apps created after 2021-02-24 may not pass tokens in the query string (§4.1, jolicode/slack-php-api#165).
  if (call.parsed.queryToken !== null) return { error: "invalid_auth" };
  return { error: "not_authed" };
}

/** Runs §4.6 steps 3–8 for a token-authenticated method. */
export function callWebApi(call: ApiCall, def: WebApiMethod): Reply {
  const extracted = extractToken(call);
  if ("error" in extracted) return errorReply(extracted.error);
  const state = call.ctx.state;
  if (call.method === "auth.revoke") {
    // auth.revoke also takes a refresh token (§3.8); it is not a bearer for anything else.
    const rt = state.refreshTokens.get(extracted.token);
    if (rt !== undefined) {
      if (state.refreshTokenProblem(rt) !== null) return errorReply("invalid_auth");
      if (!isTestMode(call)) state.revokeByOwner(rt.value);
      return okReply({ ok: true, revoked: !isTestMode(call) });
    }
  }
  const auth = state.authenticate(extracted.token);
  if (!auth.ok) return errorReply(auth.error);
  const scopesHeader = {
    "x-oauth-scopes": auth.value.scopes.join(","),
    "x-accepted-oauth-scopes": def.scope ?? "",
  };
  if (!def.tokenKinds.includes(auth.value.token.kind)) {
    return errorReply("not_allowed_token_type", {}, scopesHeader);
  }
  if (def.scope !== null && !auth.value.scopes.includes(def.scope)) {
    return errorReply(
      "missing_scope",
      { needed: def.scope, provided: auth.value.scopes.join(",") },
      scopesHeader,
    );
  }
  const reply = def.handle(call, auth.value);
  return { ...reply, headers: { ...scopesHeader, ...reply.headers } };
}

function isTestMode(call: ApiCall): boolean {
  const v = stringArg(call.parsed.args, "test");
  return v === "1" || v === "true";
}

function tenantOf(call: ApiCall, auth: Authenticated) {
  const state = call.ctx.state;
  const inst = auth.installation;
  const enterprise = inst.enterpriseId === null ? undefined : state.enterprises.get(inst.enterpriseId);
  // An org-wide install works in the workspace of its installer for the methods below.
  const teamId = inst.teamId ?? state.users.get(inst.installerUserId)?.teamId ?? "";
  const team = state.teams.get(teamId);
  return { inst, enterprise, teamId, team };
}

function botName(appName: string): string {
  return (
    appName
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_|_$/g, "") || "bot"
  );
}

/** `auth.test` (§4.2): the bot user as `user_id` plus `bot_id` for bot tokens; `enterprise_id` on Grid. */
function authTest(call: ApiCall, auth: Authenticated): Reply {
  const { inst, enterprise, team } = tenantOf(call, auth);
  const t = auth.token;
  const body: Record<string, unknown> = { ok: true };
  if (inst.isEnterpriseInstall && enterprise !== undefined) {
    body["url"] = `https://${enterprise.domain}.enterprise.slack.com/`;
    body["team"] = enterprise.name;
    body["user"] =
      t.kind === "bot" ? botName(auth.app.name) : (call.ctx.state.users.get(t.userId)?.name ?? null);
    body["team_id"] = enterprise.enterpriseId;
  } else {
    body["url"] = `https://${team?.domain ?? "workspace"}.slack.com/`;
    body["team"] = team?.name ?? "";
    body["user"] =
      t.kind === "bot" ? botName(auth.app.name) : (call.ctx.state.users.get(t.userId)?.name ?? null);
    body["team_id"] = inst.teamId;
  }
  body["user_id"] = t.userId;
  if (t.kind === "bot") body["bot_id"] = inst.botId;
  if (inst.enterpriseId !== null) body["enterprise_id"] = inst.enterpriseId;
  body["is_enterprise_install"] = inst.isEnterpriseInstall;
  return okReply(body);
}

/** `auth.revoke` (§4.3): `test=1` keeps the token and answers `revoked: false` [U] (§10.7). */
function authRevoke(call: ApiCall, auth: Authenticated): Reply {
  if (isTestMode(call)) return okReply({ ok: true, revoked: false });
  call.ctx.state.revokeByOwner(auth.token.value);
  return okReply({ ok: true, revoked: true });
}

/**
 * `apps.uninstall` (§4.4): a bot token of the installation plus the app's client id and secret. User
 * tokens get `not_allowed_token_type` (java-slack-sdk apps_Test). Success body `{ok: true}` (OAS example).
 */
function appsUninstall(call: ApiCall, auth: Authenticated): Reply {
  const { clientId, clientSecret } = clientCredentials(call.req, call.parsed.args);
  const app = clientId === undefined ? undefined : call.ctx.state.apps.get(clientId);
  if (app === undefined) return errorReply("invalid_client_id");
  if (!secretsEqual(clientSecret, app.clientSecret)) return errorReply("bad_client_secret");
  if (app.appId !== auth.app.appId) return errorReply("client_id_token_mismatch");
  call.ctx.state.uninstall(auth.installation);
  return okReply({ ok: true });
}

interface Channel {
  id: string;
  name: string;
  is_general: boolean;
}

/** Two public channels per workspace, with ids derived from the team id so they are stable. */
function channelsOf(teamId: string): Channel[] {
  const suffix = teamId.slice(1, 9);
  return [
    { id: `C${suffix}G`, name: "general", is_general: true },
    { id: `C${suffix}R`, name: "random", is_general: false },
  ];
}

let tsCounter = 0;

function chatPostMessage(call: ApiCall, auth: Authenticated): Reply {
  const args = call.parsed.args;
  const { teamId } = tenantOf(call, auth);
  const wanted = (stringArg(args, "channel") ?? "").replace(/^#/, "");
  const channel = channelsOf(teamId).find((c) => c.id === wanted || c.name === wanted);
  const dmUser = channel === undefined ? call.ctx.state.users.get(wanted) : undefined;
  if (channel === undefined && dmUser === undefined) return errorReply("channel_not_found");
  const text = stringArg(args, "text");
  if (text === undefined && args["blocks"] === undefined && args["attachments"] === undefined) {
    return errorReply("no_text");
  }
  tsCounter = (tsCounter + 1) % 1_000_000;
  const ts = `${Math.floor(call.ctx.clock.now() / 1000)}.${String(tsCounter).padStart(6, "0")}`;
  const message: Record<string, unknown> = {
    type: "message",
    text: text ?? "",
    user: auth.token.userId,
    ts,
    team: teamId,
  };
  if (auth.token.kind === "bot") message["bot_id"] = auth.installation.botId;
  return okReply({ ok: true, channel: channel?.id ?? `D${wanted.slice(1)}`, ts, message });
}

function conversationsList(call: ApiCall, auth: Authenticated): Reply {
  const { teamId } = tenantOf(call, auth);
  const created = 1_600_000_000;
  const channels = channelsOf(teamId).map((c) => ({
    ...c,
    is_channel: true,
    is_private: false,
    is_archived: false,
    created,
    context_team_id: teamId,
  }));
  return okReply({ ok: true, channels, response_metadata: { next_cursor: "" } });
}

function usersInfo(call: ApiCall, _auth: Authenticated): Reply {
  const id = stringArg(call.parsed.args, "user");
  const user = id === undefined ? undefined : call.ctx.state.users.get(id);
  if (user === undefined) return errorReply("user_not_found");
  return okReply({
    ok: true,
    user: {
      id: user.userId,
      team_id: user.teamId,
      name: user.name,
      deleted: user.deactivated,
      real_name: user.name,
      is_bot: false,
      is_admin: false,
      profile: { real_name: user.name, display_name: user.name },
    },
  });
}

const BOTH: readonly TokenKind[] = ["bot", "user"];

export const WEB_API_METHODS: Record<string, WebApiMethod> = {
  "auth.test": { scope: null, tokenKinds: BOTH, handle: authTest },
  "auth.revoke": { scope: null, tokenKinds: BOTH, handle: authRevoke },
  "apps.uninstall": { scope: null, tokenKinds: ["bot"], handle: appsUninstall },
  "chat.postMessage": { scope: "chat:write", tokenKinds: BOTH, handle: chatPostMessage },
  "conversations.list": { scope: "channels:read", tokenKinds: BOTH, handle: conversationsList },
  "users.info": { scope: "users:read", tokenKinds: BOTH, handle: usersInfo },
};
