import type { FastifyInstance, FastifyReply } from "fastify";
import { z } from "zod";
import { TokenwardenError } from "../../core/errors.js";
import type { CredentialKind } from "../../core/types.js";
import type { AccessToken } from "../../engine/get-token.js";
import { parseInput } from "../route-book.js";
import { route, type ServerContext } from "../server-context.js";
import {
  ConnectionListSchema,
  ConnectionViewSchema,
  CredentialParamsSchema,
  checkView,
  connectionView,
  DeleteQuerySchema,
  EventsQuerySchema,
  eventView,
  IdParamsSchema,
  ImportBodySchema,
  importInputOf,
  ListQuerySchema,
  RefreshBodySchema,
  refreshView,
  TokenQuerySchema,
  TokenViewSchema,
  tokenJson,
} from "../wire.js";

/** The one reply that carries a secret: never cached by anything in between. */
function sendToken(reply: FastifyReply, token: AccessToken, nowMs: number): FastifyReply {
  return reply
    .header("cache-control", "no-store")
    .type("application/json; charset=utf-8")
    .send(tokenJson(token, nowMs));
}

/** `/v1/connections`: import, read, list, token, refresh, check, events, delete (DESIGN.md "Contract"). */
export function registerConnectionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { warden } = ctx;
  const view = (c: Parameters<typeof connectionView>[0]) => connectionView(c, ctx.reconnectUrl);

  route(
    app,
    ctx,
    {
      method: "POST",
      url: "/v1/connections",
      tag: "connections",
      summary: "Import existing tokens as a connection (or replace them: a reconnect)",
      auth: true,
      body: ImportBodySchema,
      response: ConnectionViewSchema,
    },
    async (request, reply) => {
      const body = parseInput(ImportBodySchema, request.body, "body");
      // Naming a provider this server does not run is the caller's mistake (400), not our misconfiguration.
      if (body.provider !== "slack" || ctx.slack === null) {
        throw new TokenwardenError(
          "invalid_input",
          "body.provider: not configured on this server (configured: slack)",
        );
      }
      const connection = await warden.connections.import(importInputOf(body));
      return reply.code(201).send(view(connection));
    },
  );

  route(
    app,
    ctx,
    {
      method: "GET",
      url: "/v1/connections",
      tag: "connections",
      summary: "List connections (no secrets); filter by provider and status; cursor paging",
      auth: true,
      query: ListQuerySchema,
      response: ConnectionListSchema,
    },
    async (request) => {
      const q = parseInput(ListQuerySchema, request.query, "query");
      const page = await warden.connections.list({
        ...(q.provider === undefined ? {} : { provider: q.provider }),
        ...(q.status === undefined ? {} : { status: q.status }),
        ...(q.cursor === undefined || q.cursor === "" ? {} : { cursor: q.cursor }),
        ...(q.limit === undefined ? {} : { limit: q.limit }),
      });
      return { items: page.items.map(view), next_cursor: page.nextCursor };
    },
  );

  route(
    app,
    ctx,
    {
      method: "GET",
      url: "/v1/connections/:id",
      tag: "connections",
      summary: "Metadata, status, reason, credential expiries and scopes; no secrets",
      auth: true,
      params: IdParamsSchema,
      response: ConnectionViewSchema,
    },
    async (request) => {
      const { id } = parseInput(IdParamsSchema, request.params, "params");
      return view(await warden.connections.get(id));
    },
  );

  route(
    app,
    ctx,
    {
      method: "GET",
      url: "/v1/connections/:id/token",
      tag: "connections",
      summary:
        "A token valid for at least min_ttl seconds, refreshing first if needed; 409 needs_reauth when dead",
      auth: true,
      params: IdParamsSchema,
      query: TokenQuerySchema,
      response: TokenViewSchema,
    },
    (request, reply) => {
      const { id } = parseInput(IdParamsSchema, request.params, "params");
      const q = parseInput(TokenQuerySchema, request.query, "query");
      const options = {
        ...(q.kind === undefined ? {} : { kind: q.kind }),
        ...(q.min_ttl === undefined ? {} : { minTtlSeconds: q.min_ttl }),
      };
      // A warm token is answered without a promise in between: this route is the hot path.
      const cached = warden.cachedToken(id, options);
      if (cached !== null) {
        sendToken(reply, cached, ctx.clock.now());
        return undefined;
      }
      return warden.getToken(id, options).then((token) => sendToken(reply, token, ctx.clock.now()));
    },
  );

  route(
    app,
    ctx,
    {
      method: "POST",
      url: "/v1/connections/:id/refresh",
      tag: "connections",
      summary: "Refresh now (one credential or all), ignoring backoff",
      auth: true,
      params: IdParamsSchema,
      body: RefreshBodySchema,
    },
    async (request) => {
      const { id } = parseInput(IdParamsSchema, request.params, "params");
      const body = parseInput(RefreshBodySchema, request.body, "body");
      const results = await warden.connections.refresh(
        id,
        body.kind === undefined ? {} : { kind: body.kind },
      );
      return refreshView(results);
    },
  );

  route(
    app,
    ctx,
    {
      method: "POST",
      url: "/v1/connections/:id/check",
      tag: "connections",
      summary: "Health check now (Slack: auth.test), acting on the answer",
      auth: true,
      params: IdParamsSchema,
    },
    async (request) => {
      const { id } = parseInput(IdParamsSchema, request.params, "params");
      return checkView(await warden.connections.check(id));
    },
  );

  route(
    app,
    ctx,
    {
      method: "GET",
      url: "/v1/connections/:id/events",
      tag: "connections",
      summary: "The event log, newest first; page with before=<id>",
      auth: true,
      params: IdParamsSchema,
      query: EventsQuerySchema,
    },
    async (request) => {
      const { id } = parseInput(IdParamsSchema, request.params, "params");
      const q = parseInput(EventsQuerySchema, request.query, "query");
      const events = await warden.connections.events(id, {
        ...(q.limit === undefined ? {} : { limit: q.limit }),
        ...(q.before === undefined ? {} : { beforeId: q.before }),
      });
      return { items: events.map(eventView) };
    },
  );

  route(
    app,
    ctx,
    {
      method: "DELETE",
      url: "/v1/connections/:id",
      tag: "connections",
      summary: "Forget a connection; revoke=true revokes its tokens at the provider first",
      auth: true,
      params: IdParamsSchema,
      query: DeleteQuerySchema,
      response: z.object({ deleted: z.literal(true), revoked: z.array(z.unknown()) }),
    },
    async (request) => {
      const { id } = parseInput(IdParamsSchema, request.params, "params");
      const q = parseInput(DeleteQuerySchema, request.query, "query");
      return warden.connections.delete(id, { revoke: q.revoke === "true" });
    },
  );

  route(
    app,
    ctx,
    {
      method: "DELETE",
      url: "/v1/connections/:id/credentials/:kind",
      tag: "connections",
      summary:
        "Forget one credential (sign a Slack user out, keep the bot); revoke=true revokes its tokens first. 404 for a kind the connection lacks, 409 for its last credential",
      auth: true,
      params: CredentialParamsSchema,
      query: DeleteQuerySchema,
      response: z.object({
        deleted: z.literal(true),
        revoked: z.array(z.unknown()),
        connection: ConnectionViewSchema,
      }),
    },
    async (request) => {
      const { id, kind } = parseInput(CredentialParamsSchema, request.params, "params");
      const q = parseInput(DeleteQuerySchema, request.query, "query");
      // Any name: the engine answers 404 for one the connection does not hold, without echoing it.
      const r = await warden.connections.deleteCredential(id, kind as CredentialKind, {
        revoke: q.revoke === "true",
      });
      return { deleted: r.deleted, revoked: r.revoked, connection: view(r.connection) };
    },
  );
}
