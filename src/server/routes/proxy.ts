import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ConnectionIdSchema } from "../../engine/import-input.js";
import { proxySlackCall } from "../proxy.js";
import { parseInput } from "../route-book.js";
import { route, type ServerContext } from "../server-context.js";
import { KindSchema } from "../wire.js";

const BODY_LIMIT = 1024 * 1024;

const ProxyParamsSchema = z.object({ id: ConnectionIdSchema, "*": z.string().min(1).max(100) }).strict();
const ProxyHeadersSchema = z.object({ "x-tokenwarden-kind": KindSchema.optional() }).loose();

export function registerProxyRoutes(app: FastifyInstance, ctx: ServerContext): void {
  void app.register(async (scoped) => {
    // The body is forwarded byte for byte, whatever its type (form, JSON).
    scoped.removeAllContentTypeParsers();
    scoped.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: BODY_LIMIT }, (_req, body, done) => {
      done(null, body);
    });
    route(
      scoped,
      ctx,
      {
        method: "ANY",
        url: "/v1/proxy/:id/*",
        tag: "proxy",
        summary:
          "Calls SLACK_BASE_URL/api/<method> with a fresh token (X-Tokenwarden-Kind: bot|user); on token_expired refreshes and retries once; 429 and Retry-After pass through",
        auth: true,
        params: ProxyParamsSchema,
      },
      async (request, reply) => {
        const params = parseInput(ProxyParamsSchema, request.params, "params");
        const headers = parseInput(ProxyHeadersSchema, request.headers, "headers");
        const q = request.url.indexOf("?");
        const answer = await proxySlackCall(ctx, {
          connectionId: params.id,
          method: params["*"],
          httpMethod: request.method,
          query: q === -1 ? "" : request.url.slice(q),
          contentType: request.headers["content-type"],
          body: Buffer.isBuffer(request.body) ? request.body : undefined,
          kind: headers["x-tokenwarden-kind"],
        });
        // A workspace's data fetched with its token: nothing in between may keep it (Slack's own
        // Cache-Control is not passed back, and a cache keyed on the URL would serve it to anyone).
        return reply
          .code(answer.status)
          .headers(answer.headers)
          .header("cache-control", "no-store")
          .send(answer.body);
      },
    );
  });
}
