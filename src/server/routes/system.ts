import type { FastifyInstance } from "fastify";
import { htmlPage } from "../oauth-flow.js";
import { openApiDocument } from "../openapi.js";
import { route, type ServerContext } from "../server-context.js";

/** `/healthz`, `/metrics`, `/openapi.json` and the dashboard placeholder at `/`. */
export function registerSystemRoutes(app: FastifyInstance, ctx: ServerContext, version: string): void {
  route(
    app,
    ctx,
    { method: "GET", url: "/healthz", tag: "system", summary: "Liveness, with a store check", auth: false },
    async (_request, reply) => {
      try {
        await ctx.store.ping();
        return { ok: true, store: "ok" };
      } catch {
        return reply.code(503).send({ ok: false, store: "unavailable" });
      }
    },
  );
  route(
    app,
    ctx,
    {
      method: "GET",
      url: "/metrics",
      tag: "system",
      summary: "Prometheus metrics",
      auth: false,
      produces: "text/plain",
    },
    async (_request, reply) =>
      reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()),
  );
  route(
    app,
    ctx,
    { method: "GET", url: "/openapi.json", tag: "system", summary: "This API as OpenAPI 3.1", auth: false },
    async () => openApiDocument(ctx.book, { version, serverUrl: ctx.publicUrl }),
  );
  route(
    app,
    ctx,
    { method: "GET", url: "/", tag: "system", summary: "The dashboard", auth: false, produces: "text/html" },
    async (_request, reply) =>
      reply
        .type("text/html; charset=utf-8")
        .send(
          htmlPage(
            "tokenwarden",
            `The dashboard is coming. Meanwhile: GET ${ctx.publicUrl}/v1/connections with your API key, /openapi.json for the API, /metrics for Prometheus, and ${ctx.publicUrl}/oauth/slack/install to install Slack.`,
          ),
        ),
  );
}
