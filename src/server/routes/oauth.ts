import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { TokenwardenError } from "../../core/errors.js";
import type { Classification, Connection } from "../../core/types.js";
import { ConnectionIdSchema, type ImportInput } from "../../engine/import-input.js";
import { withTimeout } from "../../engine/timeout.js";
import { installationMetadata } from "../../providers/slack/installation-metadata.js";
import {
  CLIENT_ID_KEY,
  type SlackInstallation,
  type SlackProvider,
} from "../../providers/slack/slack-provider.js";
import { errorBodyOf } from "../error-reply.js";
import { type FlowPayload, htmlPage, isAllowedReturnUrl, newFlowId } from "../oauth-flow.js";
import { returnUrlWith } from "../return-url.js";
import { parseInput } from "../route-book.js";
import { route, type ServerContext } from "../server-context.js";

/** The code exchange of an install; the user is waiting on the callback page meanwhile. */
const EXCHANGE_TIMEOUT_MS = 20_000;

/** Revoking the tokens of a refused install; the user is waiting on the refusal page meanwhile. */
const REVOKE_TIMEOUT_MS = 5_000;

/** Slack's code lives 10 minutes (slack-api.md §2.2); a state outliving it is useless. */
const STATE_TTL_MS = 10 * 60_000;

/** The store's marks of connect sessions an install has completed through: spent links. */
const SESSION_SCOPE = "connect_session";

/**
 * The connections holding a workspace a plain install reads at most, looking for the installer's own
 * (one per member in a user-token-only app): past that many, it is the workspace's id's.
 */
const HOLDERS_READ = 200;

/** Marks of connect sessions whose callback is running: one install at a time per session. */
const SESSION_HOLD_SCOPE = "connect_session_hold";

/**
 * How long a callback holds its connect session while it exchanges the code and stores the install
 * (at most the exchange's 20 s and a revocation's 5 s, plus the store's writes). A process that dies
 * meanwhile blocks the link's other installs for no longer than this.
 */
const SESSION_HOLD_MS = 2 * 60_000;

// Unknown keys are dropped, not refused: mail clients, link trackers and chat tools append their own
// (utm_source, fbclid), and the person following the link must still reach Slack.
const InstallQuerySchema = z.object({
  connection_id: ConnectionIdSchema.optional(),
  /** A reconnect link's signature (crypto/reconnect-link.ts); a bad one makes the id a bare one. */
  sig: z.string().max(256).optional(),
  return_url: z.string().max(2048).optional(),
  session: z.string().max(4096).optional(),
});

const CallbackQuerySchema = z
  .object({
    code: z.string().max(1024).optional(),
    state: z.string().max(4096).optional(),
    error: z.string().max(256).optional(),
    error_description: z.string().max(1024).optional(),
  })
  .loose(); // Slack may add parameters; none of them is acted on

const InstalledQuerySchema = z.object({ connection_id: ConnectionIdSchema }).strict();

export const ConnectSessionBodySchema = z
  .object({
    connection_id: ConnectionIdSchema.optional(),
    return_url: z
      .url({ protocol: /^https?$/ })
      .max(2048)
      .optional(),
    ttl_seconds: z
      .number()
      .int()
      .min(60)
      .max(7 * 86_400)
      .optional(),
  })
  .strict();

const ConnectSessionSchema = z.object({
  url: z.string(),
  connection_id: z.string().nullable(),
  expires_at: z.string(),
});

/** Exchange errors caused by the browser's request (a reused or stale code), not by Slack or us (§2.3.5). */
const BROWSER_ERRORS = new Set([
  "invalid_code",
  "code_already_used",
  "bad_redirect_uri",
  "invalid_grant",
  "oauth_authorization_url_mismatch",
  "invalid_code_verifier",
]);

/** A page for the person in the browser: nothing changed, and why. */
function page(reply: FastifyReply, status: number, title: string, message: string): FastifyReply {
  return reply.code(status).type("text/html; charset=utf-8").send(htmlPage(title, message));
}

/**
 * A browser route's own failure (the store, the configuration) as a page. The person following a
 * link gets a sentence and the error's code, never its message: that is the operator's (in the log)
 * and may name the database's host or a table. Nothing was written before it, on either route.
 */
async function asPage(
  request: FastifyRequest,
  reply: FastifyReply,
  run: () => Promise<FastifyReply>,
): Promise<FastifyReply> {
  try {
    return await run();
  } catch (error) {
    const { status, body } = errorBodyOf(error);
    if (status >= 500) request.log.error({ err: error }, "install flow failed");
    return page(
      reply,
      status,
      "Something went wrong",
      `tokenwarden could not complete this step (${body.error.code}). Nothing was changed; try again in a moment.`,
    );
  }
}

function usedPage(reply: FastifyReply): FastifyReply {
  return page(
    reply,
    400,
    "Link already used",
    "Slack was already connected through this link, which works once. Nothing was changed; ask for a new link to connect again.",
  );
}

/**
 * Spends a connect session once an install through it is stored: opened again, its link says so.
 * Until the last state started from it expires, not the session itself: a tab opened just before the
 * session ran out comes back up to 10 minutes after, and must find it spent. A store error here is
 * logged, not shown: the install is stored, and the worst is a link that may be used again.
 */
async function spendSession(
  request: FastifyRequest,
  ctx: ServerContext,
  session: { sid: string; exp: number },
  nowMs: number,
): Promise<void> {
  try {
    await ctx.store.markOnce(SESSION_SCOPE, session.sid, nowMs, session.exp + STATE_TTL_MS);
  } catch (error) {
    request.log.warn({ err: error }, "connect session not marked used; its link may be used again");
  }
}

function gonePage(reply: FastifyReply): FastifyReply {
  return page(
    reply,
    404,
    "Connection deleted",
    "The connection this link reconnects no longer exists. Nothing was changed; ask for a new link.",
  );
}

/**
 * The one refusal of a bare `connection_id` (no valid signature) completed in a workspace it does not
 * reconnect (or by a member or app whose connection it is not). Anyone can type such a link and
 * install into a workspace of their own: whether the id is stored, and whether its workspace is
 * known, must read the same, or the page is an oracle.
 */
function notThisWorkspacePage(reply: FastifyReply): FastifyReply {
  return page(
    reply,
    400,
    "Wrong workspace",
    "Slack installed the app into a different workspace than the one this link reconnects (or as another member, or for another app, than its connection's), or the link's connection no longer exists. Nothing was changed; choose the right workspace, or ask for a new link.",
  );
}

/**
 * The refusal of a reconnect through a link tokenwarden made, completed in another workspace than its
 * connection's, or for a connection whose workspace is not known (`workspaceKnown` false).
 */
function wrongWorkspacePage(reply: FastifyReply, workspaceKnown: boolean): FastifyReply {
  return page(
    reply,
    400,
    "Wrong workspace",
    workspaceKnown
      ? "Slack installed the app into a different workspace than the one this link reconnects (or org-wide, for one workspace's connection, or the reverse). Nothing was changed; choose the right workspace."
      : "This connection's workspace is not known (it was imported without team_id in its metadata and never checked while it worked), so it cannot be told apart from another one. Nothing was changed; ask whoever runs this app to check the connection if its token still works (tokenwarden connections check <id>: Slack's answer names its workspace), or to import it again with its team_id.",
  );
}

/**
 * The refusals of an install into a connection that is not its own (notOwnInstallation), for a link
 * tokenwarden made or a plain install: its installer is a member of that workspace, who may know.
 */
const NOT_OWN_PAGES: Readonly<Record<NotOwn, readonly [title: string, message: string]>> = {
  app: [
    "Wrong app",
    "This workspace's connection here belongs to another Slack app: this app's tokens cannot stand in for that app's. Nothing was changed.",
  ],
  member: [
    "Wrong member",
    "Slack installed the app as a different member than the one this connection belongs to, and your user token would stand in for theirs. Nothing was changed; the member who connected it reconnects it. If they no longer can (they left), ask whoever runs this app to remove their user token from the connection, or to delete it; then another member can connect it.",
  ],
  member_unknown: [
    "Wrong member",
    "This connection's member is not known (it holds a user token, was imported without authed_user_id in its metadata, and Slack has not named its member since), so any member's install could stand in for theirs. Nothing was changed; ask whoever runs this app to check the connection (tokenwarden connections check <id>, or POST /v1/connections/<id>/check: Slack's answer names its member, and then that member's install reconnects it), or to import it again with its authed_user_id.",
  ],
};

function notOwnPage(reply: FastifyReply, notOwn: NotOwn): FastifyReply {
  const [title, message] = NOT_OWN_PAGES[notOwn];
  return page(reply, 400, title, message);
}

function failurePage(reply: FastifyReply, classification: Classification): FastifyReply {
  // A refused code is the browser's problem (reused, expired); an outage or our config is ours.
  const status = BROWSER_ERRORS.has(classification.error)
    ? 400
    : classification.kind === "misconfigured"
      ? 502
      : classification.kind === "transient"
        ? 503
        : 400;
  return page(
    reply,
    status,
    "Installation failed",
    `Slack did not complete the installation (${classification.error}). Nothing was changed; start again.`,
  );
}

/** The connection an installation belongs to: the workspace, or the org for an org-wide install. */
function installationId(i: SlackInstallation): string | null {
  return i.isEnterpriseInstall ? i.enterpriseId : i.teamId;
}

/**
 * The installation a stored connection is, from its metadata: its workspace, or, only when it has
 * none (an org-wide install), its org. A workspace of a Grid org names the org too, and is not it.
 */
function installationOf(metadata: Record<string, unknown>): string | null {
  const teamId = metadata["team_id"];
  const enterpriseId = metadata["enterprise_id"];
  return typeof teamId === "string" ? teamId : typeof enterpriseId === "string" ? enterpriseId : null;
}

/** The installation's credentials, bot first, each with its kind. */
function credentialsOf(i: SlackInstallation) {
  return [
    { kind: "bot" as const, t: i.bot },
    { kind: "user" as const, t: i.user },
  ].flatMap(({ kind, t }) => (t === undefined ? [] : [{ kind, t }]));
}

/** Whose a connection is, when not an installation's: another app's, another member's, nobody's known. */
type NotOwn = "app" | "member" | "member_unknown";

/**
 * Why a connection holding the workspace is not this installation's to reconnect, if it is not: it
 * is another Slack app's (its tokens would be replaced by this app's), or another member's. For an
 * installation without a bot token (a user-token-only app, one connection per member) only the same
 * member's is its own, or one member's connection would hand out another's user token; with a bot
 * and a user token, the member whose user token it holds (memberOf), if it names one. An `app_id` it
 * does not name is taken as this app's (connections imported before it was recorded); a member it
 * does not name matches only with a bot. Null: its own.
 */
function notOwnInstallation(holder: Connection, i: SlackInstallation): NotOwn | null {
  const appId = holder.metadata["app_id"];
  if (appId !== undefined && appId !== null && appId !== i.appId) return "app";
  const holderMember = memberOf(holder);
  const sameMember = i.authedUserId !== null && holderMember === i.authedUserId;
  if (i.bot === undefined) {
    return sameMember ? null : holderMember !== null ? "member" : "member_unknown";
  }
  // A bot and a user token: another member's user token would stand in for the holder's member's
  // (what the app calls "the installer" would silently change person). The bot alone is the
  // workspace's, and so is a connection whose user token is gone (its installer left and was signed
  // out of it: the metadata still names them, but no token of theirs is there to stand in for).
  const holdsUser = holder.credentials.some((c) => c.kind === "user");
  return i.user === undefined || !holdsUser || holderMember === null || sameMember ? null : "member";
}

/**
 * Why the connection stored under the installation's own id is not this install's to write (by this
 * callback, or an import of an @slack/oauth export: the workspace's only place, reached by a plain
 * install too), if it is not: another app's connection there keeps its tokens; so does a
 * user-token-only app's, which is one member's. With a bot, the connection is the workspace's, and
 * whoever reinstalls the app there reconnects it.
 */
function refusedAtOwnId(target: Connection, i: SlackInstallation): NotOwn | null {
  const notOwn = notOwnInstallation(target, i);
  return notOwn === "app" || (notOwn !== null && i.bot === undefined) ? notOwn : null;
}

/**
 * The member whose user token a connection holds: Slack's word on the token first (its user_id, which
 * the install stores, every refresh of a user token records, and a healthy check records where it is
 * missing), else the metadata's authed_user_id (an import may give either, or neither: then null).
 */
function memberOf(holder: Connection): string | null {
  const fromToken = holder.credentials.find((c) => c.kind === "user")?.providerData["user_id"];
  if (typeof fromToken === "string") return fromToken;
  const named = holder.metadata["authed_user_id"];
  return typeof named === "string" ? named : null;
}

/**
 * Revokes the tokens of an installation the callback does not store (refused, unreadable, or the
 * store failed), so none stays live at Slack with nobody holding it: per credential the refresh
 * token first (no new access token is minted from it meanwhile), then the access token. Rotating
 * credentials only: with rotation, auth.revoke revokes that one token and leaves the installation
 * alone (slack-api.md §3.8, §4.3), whereas a non-rotating bot token is the workspace's own, shared
 * with whoever else holds it (maybe another connection here), and revoking it would uninstall the
 * app there. Best effort, bounded; never throws.
 */
async function revokeUnstored(
  provider: SlackProvider,
  i: SlackInstallation,
): Promise<Array<{ kind: "bot" | "user"; revoked: boolean | "not_rotating" }>> {
  return withTimeout(REVOKE_TIMEOUT_MS, (signal) =>
    Promise.all(
      credentialsOf(i).map(async ({ kind, t }) => {
        if (t.refreshToken === null) return { kind, revoked: "not_rotating" as const };
        let revoked = true;
        for (const token of [t.refreshToken, t.accessToken]) {
          const outcome = await provider.revoke(token, signal).catch(() => null);
          revoked &&= outcome?.kind === "ok";
        }
        return { kind, revoked };
      }),
    ),
  );
}

/** Whether the store holds any of the installation's access tokens under connection `id`. */
async function storedAny(ctx: ServerContext, id: string, i: SlackInstallation): Promise<boolean> {
  for (const { kind, t } of credentialsOf(i)) {
    const stored = await ctx.store.getCredential({ connectionId: id, kind });
    if (stored !== null && stored.accessToken.reveal() === t.accessToken.reveal()) return true;
  }
  return false;
}

function importOf(id: string, i: SlackInstallation): ImportInput {
  const credentials: ImportInput["credentials"] = {};
  for (const { kind, t } of credentialsOf(i)) {
    credentials[kind] = {
      accessToken: t.accessToken.reveal(),
      ...(t.refreshToken === null ? {} : { refreshToken: t.refreshToken.reveal() }),
      ...(t.expiresAtMs === null ? {} : { expiresAt: t.expiresAtMs }),
      scopes: t.scopes,
      tokenType: t.tokenType,
      providerData: {
        ...(kind === "bot" ? { bot_user_id: i.bot?.botUserId ?? null } : { user_id: i.user?.userId ?? null }),
        [CLIENT_ID_KEY]: i.clientId,
      },
    };
  }
  return {
    id,
    provider: "slack",
    credentials,
    metadata: installationMetadata({ ...i, botUserId: i.bot?.botUserId ?? null }),
  };
}

/**
 * The tokens the app asks for that Slack did not grant. Slack grants what the authorize URL asks for,
 * all or nothing, but that URL passes through the browser: whoever follows a link can drop `scope` and
 * keep a `user_scope`, which a member may grant without installing the bot. Stored, it would replace
 * the connection's bot (still live, then held by nobody), and a caller asking for the connection's
 * token would get that person's user token.
 */
function missingTokens(
  slack: { scopes: readonly string[]; userScopes: readonly string[] },
  i: SlackInstallation,
): Array<"bot" | "user"> {
  return [
    ...(slack.scopes.length > 0 && i.bot === undefined ? (["bot"] as const) : []),
    ...(slack.userScopes.length > 0 && i.user === undefined ? (["user"] as const) : []),
  ];
}

/**
 * A plain install's connection among those whose metadata names its workspace (or org), other than
 * the one under `installedId` (judged by the caller): the only one that is the installation's own
 * (notOwnInstallation), or null when none or several are (several is the app's own choice). Each is
 * read on its own: the store has no read of several connections by id.
 */
async function ownHolder(
  ctx: ServerContext,
  i: SlackInstallation,
  installedId: string,
): Promise<Connection | null> {
  const holders = await ctx.store.findConnectionsByInstallation({
    provider: "slack",
    ...(i.isEnterpriseInstall ? { enterpriseId: installedId } : { teamId: installedId }),
    limit: HOLDERS_READ,
  });
  const own: Connection[] = [];
  for (const holderId of holders) {
    if (holderId === installedId) continue;
    const holder = await ctx.store.getConnection(holderId);
    if (holder !== null && notOwnInstallation(holder, i) === null) own.push(holder);
    if (own.length > 1) return null;
  }
  return own[0] ?? null;
}

/**
 * Takes connect session `sid`'s hold for this callback, until `heldUntilMs`: its callbacks take turns.
 * A page when this one must stop: another window's install holds it, or an earlier one spent it.
 */
async function holdSession(
  ctx: ServerContext,
  reply: FastifyReply,
  sid: string,
  nowMs: number,
  heldUntilMs: number,
): Promise<FastifyReply | null> {
  if (!(await ctx.store.markOnce(SESSION_HOLD_SCOPE, sid, nowMs, heldUntilMs))) {
    return page(
      reply,
      409,
      "Link in use",
      "An installation through this link is in progress in another window. Nothing was changed; finish that one.",
    );
  }
  if (await sessionSpent(ctx, sid, nowMs)) {
    await ctx.store.unmarkOnce(SESSION_HOLD_SCOPE, sid, heldUntilMs);
    return usedPage(reply);
  }
  return null;
}

/** `/oauth/slack/install`, `/oauth/slack/callback`, `/oauth/slack/installed` and `POST /v1/connect-sessions`. */
export function registerOAuthRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const redirectUri = `${ctx.publicUrl}/oauth/slack/callback`;
  // Dated by this host's clock: the app checks the timestamp against its own, outside the deployment.
  const backTo = (returnUrl: string, params: Record<string, string>) =>
    returnUrlWith(
      returnUrl,
      params,
      ctx.returnUrlSecret === null ? null : { secret: ctx.returnUrlSecret, nowMs: ctx.hostClock.now() },
    );

  function requireSlack() {
    if (ctx.slack === null)
      throw new TokenwardenError(
        "provider_misconfigured",
        "Slack is not configured (SLACK_CLIENT_ID, SLACK_CLIENT_SECRET)",
      );
    return ctx.slack;
  }

  route(
    app,
    ctx,
    {
      method: "POST",
      url: "/v1/connect-sessions",
      tag: "install",
      summary: "A short-lived link an end user opens to install, or reconnect one connection",
      auth: true,
      body: ConnectSessionBodySchema,
      response: ConnectSessionSchema,
    },
    async (request, reply) => {
      requireSlack();
      const body = parseInput(ConnectSessionBodySchema, request.body, "body");
      if (body.return_url !== undefined && !isAllowedReturnUrl(body.return_url, ctx.allowedReturnOrigins)) {
        throw new TokenwardenError(
          "invalid_input",
          "body.return_url: its origin is not allowed (TOKENWARDEN_RETURN_URL_ORIGINS)",
        );
      }
      if (body.connection_id !== undefined) await ctx.warden.connections.get(body.connection_id);
      const expiresAtMs = ctx.clock.now() + (body.ttl_seconds ?? 3_600) * 1000;
      const token = ctx.signer.sign({
        use: "session",
        sid: newFlowId(),
        cid: body.connection_id ?? null,
        ret: body.return_url ?? null,
        exp: expiresAtMs,
      });
      return reply.code(201).send({
        url: `${ctx.publicUrl}/oauth/slack/install?session=${encodeURIComponent(token)}`,
        connection_id: body.connection_id ?? null,
        expires_at: new Date(expiresAtMs).toISOString(),
      });
    },
  );

  route(
    app,
    ctx,
    {
      method: "GET",
      url: "/oauth/slack/install",
      tag: "install",
      summary:
        "Redirects to Slack's authorize page with a signed, expiring, single-use state (a connect-session link, a reconnect link, or a plain install)",
      auth: false,
      query: InstallQuerySchema,
      produces: "text/html",
    },
    async (request, reply) =>
      asPage(request, reply, async () => {
        const slack = requireSlack();
        const parsed = InstallQuerySchema.safeParse(request.query ?? {});
        if (!parsed.success) return page(reply, 400, "Invalid install link", "This link is malformed.");
        const q = parsed.data;
        let cid = q.connection_id ?? null;
        let ret = q.return_url ?? null;
        // Whether tokenwarden made this link for `cid` (a connect session, a signed reconnect link):
        // only then may the answer depend on what is stored under it.
        let vouched = cid !== null && q.sig !== undefined && ctx.reconnectLinks.verify("slack", cid, q.sig);
        let session: FlowPayload["session"];
        if (q.session !== undefined) {
          const verdict = ctx.signer.verify(q.session, "session", ctx.clock.now());
          if (!verdict.ok) {
            return page(
              reply,
              400,
              "Link expired or invalid",
              "Ask for a new install link; nothing was changed.",
            );
          }
          if (await sessionSpent(ctx, verdict.payload.sid, ctx.clock.now())) {
            return usedPage(reply);
          }
          session = { sid: verdict.payload.sid, exp: verdict.payload.exp };
          cid = verdict.payload.cid;
          ret = verdict.payload.ret;
          vouched = cid !== null;
        } else if (ret !== null && !isAllowedReturnUrl(ret, ctx.allowedReturnOrigins)) {
          return page(reply, 400, "Invalid install link", "The return address of this link is not allowed.");
        }
        let team: string | undefined;
        // A bare id is anyone's to type: it is not looked up here, so every id gets the same answer
        // (no `team=`, no deleted page); the callback still reconnects only its own workspace.
        if (cid !== null && vouched) {
          const existing = await ctx.store.getConnection(cid);
          // Links are made for stored connections only: one missing was deleted since, whatever its
          // id looks like (an id of the operator's own can look like a Slack one: `TESTCO`).
          if (existing === null) return gonePage(reply);
          // Only what Slack told us names the workspace; the id's shape is no hint.
          team = installationOf(existing.metadata) ?? undefined;
        }
        const state = ctx.signer.sign({
          use: "state",
          sid: newFlowId(),
          cid,
          ret,
          ...(vouched ? { known: true } : {}),
          ...(session === undefined ? {} : { session }),
          exp: ctx.clock.now() + STATE_TTL_MS,
        });
        const url = slack.provider.authorizeUrl({
          state,
          redirectUri,
          scopes: slack.scopes,
          userScopes: slack.userScopes,
          ...(team === undefined ? {} : { team }),
        });
        return reply.header("cache-control", "no-store").redirect(url, 302);
      }),
  );

  route(
    app,
    ctx,
    {
      method: "GET",
      url: "/oauth/slack/callback",
      tag: "install",
      summary:
        "Slack's redirect back: checks and consumes the state, exchanges the code, stores the installation, redirects",
      auth: false,
      query: CallbackQuerySchema,
      produces: "text/html",
    },
    async (request, reply) =>
      asPage(request, reply, async () => {
        const slack = requireSlack();
        const parsed = CallbackQuerySchema.safeParse(request.query ?? {});
        if (!parsed.success || parsed.data.state === undefined) {
          return page(
            reply,
            400,
            "Invalid install link",
            "The answer from Slack carried no valid state. Nothing was changed.",
          );
        }
        const q = parsed.data;
        const now = ctx.clock.now();
        const verdict = ctx.signer.verify(q.state ?? "", "state", now);
        if (!verdict.ok) {
          const message =
            verdict.reason === "expired"
              ? "This installation took too long and its link expired. Nothing was changed; start again."
              : "This installation link is not valid. Nothing was changed; start again.";
          return page(reply, 400, "Installation link invalid", message);
        }
        const { payload } = verdict;
        // Single use across every process: the first callback with this state wins; a replay changes nothing.
        if (!(await ctx.store.markOnce("oauth_state", payload.sid, now, payload.exp))) {
          return page(
            reply,
            400,
            "Link already used",
            "This installation link was already used. Nothing was changed.",
          );
        }
        if (q.error !== undefined || q.code === undefined) {
          if (payload.ret !== null) {
            const error = q.error === "access_denied" ? "access_denied" : "install_failed";
            return reply.redirect(backTo(payload.ret, { error }), 303);
          }
          return q.error === "access_denied"
            ? page(
                reply,
                200,
                "Installation cancelled",
                "You cancelled the installation. Nothing was changed.",
              )
            : page(
                reply,
                400,
                "Installation failed",
                "Slack did not send an authorization code. Nothing was changed.",
              );
        }
        // A connect session installs once. Its callbacks take turns (a hold, before the code is
        // exchanged, so a second tab's install gets no tokens), and one that finds the session spent
        // by an earlier install stops there. Held first and checked second: an install spends the
        // session before it lets go of the hold, so no two callbacks both find it unspent.
        const session = payload.session ?? null;
        const held = now + SESSION_HOLD_MS;
        if (session !== null) {
          const refused = await holdSession(ctx, reply, session.sid, now, held);
          if (refused !== null) return refused;
        }
        try {
          const code = q.code;
          const exchanged = await withTimeout(EXCHANGE_TIMEOUT_MS, (signal) =>
            slack.provider.exchangeCode({ code, redirectUri }, signal),
          );
          if (exchanged.kind === "failed") return failurePage(reply, exchanged.classification);
          const installation = exchanged.installation;
          /** Slack's new tokens, which nothing here will hold, revoked; and why, in the log. */
          const revokeRefused = async (fields: Record<string, unknown>, message: string) => {
            const revoked = await revokeUnstored(slack.provider, installation);
            request.log.warn({ ...fields, revoked }, message);
          };
          const installedId = installationId(installation);
          if (installedId === null) {
            await revokeRefused({}, "installation names no workspace or org; its tokens revoked");
            return failurePage(reply, {
              kind: "transient",
              reason: "provider_unavailable",
              error: "invalid_response",
            });
          }
          const missing = missingTokens(slack, installation);
          if (missing.length > 0) {
            await revokeRefused(
              { connectionId: payload.cid, installedId, missing },
              "installation without a token the app asks for refused; its tokens revoked",
            );
            return page(
              reply,
              400,
              "Installation incomplete",
              `Slack did not grant the ${missing.join(" and ")} token this app asks for (the authorization link was changed on its way). Nothing was changed; start again from the original link.`,
            );
          }
          let id = installedId;
          const storeFailed = async (error: unknown): Promise<never> => {
            // Nothing stored, and nobody else holds what Slack has just issued.
            await revokeRefused({ connectionId: payload.cid, installedId }, "store failed; tokens revoked");
            throw error;
          };
          // The connection this install writes: the link's own (checked below), else the workspace's.
          let target = await ctx.store.getConnection(payload.cid ?? installedId).catch(storeFailed);
          if (payload.cid === null && (target === null || refusedAtOwnId(target, installation) !== null)) {
            // A plain install (the app's "Add to Slack") of a workspace stored under an id of the app's
            // own: it is that connection's reconnect, or a second connection would hold the workspace
            // and the first stay dead. Only when exactly one of those holding it is its own; several is
            // the app's own choice. Looked for too when the workspace's id holds a connection that is
            // not the installation's (another member's, in a user-token-only app): the installing
            // member's own connection is still theirs to reconnect.
            const own = await ownHolder(ctx, installation, installedId).catch(storeFailed);
            if (own !== null) {
              target = own;
              id = own.id;
            }
          }
          if (payload.cid !== null && target === null) {
            // Deleted while the person was on Slack's page (a link names a stored connection only): an
            // install would re-create what the operator removed. Slack's new tokens must not stay live.
            await revokeRefused(
              { connectionId: payload.cid, installedId },
              "reconnect of a deleted connection refused; its new tokens revoked",
            );
            return payload.known === true ? gonePage(reply) : notThisWorkspacePage(reply);
          }
          if (target !== null && payload.cid !== null && payload.cid !== installedId) {
            // A reconnect must land on its own workspace: a link for T1 can never overwrite T1 with T2's tokens.
            // Its installation is its workspace, or, only for an org-wide install (no workspace of its own),
            // its org: a workspace of a Grid org has the org's id in its metadata too, and an org-wide
            // install is not its installation (another token, another Slack id, other events).
            const known = installationOf(target.metadata);
            if (known !== installedId) {
              // Slack has installed the app there and issued tokens by now: they must not stay live.
              await revokeRefused(
                { connectionId: payload.cid, installedId },
                "reconnect into another workspace refused; its new tokens revoked",
              );
              return payload.known === true
                ? wrongWorkspacePage(reply, known !== null)
                : notThisWorkspacePage(reply);
            }
            // Its workspace, and also its own: a link names one connection, and the person following
            // it (anyone, for a bare link) must not make it another member's or another app's. Stored
            // under an id of the app's own, as a plain install's holder is, it is held to the same test.
            const notOwn = notOwnInstallation(target, installation);
            if (notOwn !== null) {
              await revokeRefused(
                { connectionId: payload.cid, installedId, notOwn },
                "reconnect by another member or app refused; its new tokens revoked",
              );
              return payload.known === true ? notOwnPage(reply, notOwn) : notThisWorkspacePage(reply);
            }
            id = payload.cid;
          }
          if (target !== null && target.id === installedId) {
            // Stored under the installation's own id, and (for a plain install) no other connection of
            // the workspace is the installation's own: written only when it is its own (refusedAtOwnId).
            const notOwn = refusedAtOwnId(target, installation);
            if (notOwn !== null) {
              await revokeRefused(
                { connectionId: target.id, notOwn },
                "install over another member's or app's connection refused; its new tokens revoked",
              );
              return payload.cid !== null && payload.known !== true
                ? notThisWorkspacePage(reply)
                : notOwnPage(reply, notOwn);
            }
          }
          // An import replaces metadata; a reconnect keeps what the operator attached (a customer id, a
          // tenant key), and Slack's current answer wins for the fields it gives. Merged by the store at
          // the write, not from `target`: a key written since that read (a health check filling in the
          // workspace, the operator's update) is kept.
          try {
            await ctx.warden.connections.import(importOf(id, installation), { mergeMetadata: true });
          } catch (error) {
            // Revoked only when known not to be stored (nobody holds them then): an import can fail after
            // its commit (its read-back, a COMMIT whose answer was lost), and revoking what the store now
            // holds would kill a connection that reads active. Unknown (the store still down) is kept.
            if (!(await storedAny(ctx, id, installation).catch(() => true))) {
              await revokeRefused({ connectionId: id }, "installation not stored; its tokens revoked");
            }
            const { status, body } = errorBodyOf(error);
            request.log.error({ err: error, connectionId: id }, "installation not saved");
            return page(
              reply,
              status,
              "Installation not saved",
              `Slack installed the app, but tokenwarden could not save the installation, or could not confirm it did (${body.error.code}). Start again in a moment.`,
            );
          }
          if (session !== null) await spendSession(request, ctx, session, now);
          request.log.info({ connectionId: id }, "installed");
          if (payload.ret !== null) {
            return reply.redirect(backTo(payload.ret, { connection_id: id, status: "installed" }), 303);
          }
          return reply.redirect(
            `${ctx.publicUrl}/oauth/slack/installed?connection_id=${encodeURIComponent(id)}`,
            303,
          );
        } finally {
          // Fenced on this callback's hold; the page may already be on its way meanwhile.
          if (session !== null) {
            await ctx.store.unmarkOnce(SESSION_HOLD_SCOPE, session.sid, held).catch((error: unknown) => {
              request.log.warn({ err: error }, "connect session hold not released; it lapses in two minutes");
            });
          }
        }
      }),
  );

  route(
    app,
    ctx,
    {
      method: "GET",
      url: "/oauth/slack/installed",
      tag: "install",
      summary: "The success page after an install or reconnect",
      auth: false,
      query: InstalledQuerySchema,
      produces: "text/html",
    },
    async (request, reply) => {
      const q = InstalledQuerySchema.safeParse(request.query ?? {});
      const id = q.success ? q.data.connection_id : "your workspace";
      return page(reply, 200, "Connected", `Slack is connected (${id}). You can close this window.`);
    },
  );
}

/** Whether an install through connect session `sid` was stored (a store without hasMark cannot say). */
async function sessionSpent(ctx: ServerContext, sid: string, nowMs: number): Promise<boolean> {
  return (await ctx.store.hasMark?.(SESSION_SCOPE, sid, nowMs)) ?? false;
}
