/**
 * The HTTP server: one Fastify instance over one warden. Built by `buildApp`
 * from explicit dependencies (no module singletons), so tests run several
 * side by side and `inject()` without a socket.
 */

import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from "fastify";
import { TokenwardenError } from "../core/errors.js";
import type { Clock, Store } from "../core/ports.js";
import { reconnectUrlOf } from "../core/reconnect-url.js";
import type { Secret } from "../core/secret.js";
import type { ReconnectLinkSigner } from "../crypto/reconnect-link.js";
import { SECRET_REDACT_PATHS } from "../engine/default-logger.js";
import type { Warden } from "../engine/warden.js";
import type { SlackProvider } from "../providers/slack/slack-provider.js";
import { ApiKeyVerifier } from "./auth.js";
import { errorHandler, sendError } from "./error-reply.js";
import { type Metrics, providerFlagsOf } from "./metrics.js";
import type { OAuthStateSigner } from "./oauth-flow.js";
import { RouteBook } from "./route-book.js";
import { registerConnectionRoutes } from "./routes/connections.js";
import { registerOAuthRoutes } from "./routes/oauth.js";
import { registerProxyRoutes } from "./routes/proxy.js";
import { registerSlackEventRoutes } from "./routes/slack-events.js";
import { registerSystemRoutes } from "./routes/system.js";
import type { ServerContext } from "./server-context.js";

export interface AppOptions {
  warden: Warden;
  store: Store;
  clock: Clock;
  /** This host's clock, where it differs from `clock` (ServerContext.hostClock); `clock` without it. */
  hostClock?: Clock;
  metrics: Metrics;
  publicUrl: string;
  apiKeyDigest: Buffer;
  signer: OAuthStateSigner;
  /** Signs the reconnect links the API hands out and checks those the install route is given. */
  reconnectLinks: ReconnectLinkSigner;
  slack: ServerContext["slack"];
  allowedReturnOrigins: Iterable<string>;
  /** Signs the redirects back to a return_url (TOKENWARDEN_WEBHOOK_SECRET); null leaves them unsigned. */
  returnUrlSecret?: Secret | null;
  fetch?: typeof globalThis.fetch;
  /** pino options, or false for none (tests). Redaction is added either way. */
  logger?: FastifyServerOptions["logger"];
  /** JSON body limit of the API, bytes. */
  bodyLimit?: number;
  version?: string;
}

/** Never in a log line: credentials of the caller and tokens in bodies. */
export const REDACT = [
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-slack-signature"]',
  ...SECRET_REDACT_PATHS,
];

/**
 * A request as its log line shows it: the query's values are left out, because some carry secrets
 * in the query string (a proxied `?token=…`, the OAuth callback's `?code=…&state=…`). Its keys stay.
 */
export function logSafeUrl(url: string): string {
  const q = url.indexOf("?");
  if (q === -1) return url;
  const keys = url
    .slice(q + 1)
    .split("&")
    .filter((pair) => pair !== "")
    // A part without `=` is all value (`?xoxb-…` alone): nothing of it is shown.
    .map((pair) => (pair.includes("=") ? `${pair.slice(0, pair.indexOf("="))}=…` : "…"));
  return `${url.slice(0, q)}?${keys.join("&")}`;
}

const requestSerializer = (req: FastifyRequest) => ({
  method: req.method,
  url: logSafeUrl(req.url),
  host: req.host,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort as number,
});

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const publicUrl = o.publicUrl.replace(/\/+$/, "");
  const app = Fastify({
    logger:
      o.logger === undefined || o.logger === false
        ? false
        : {
            ...(o.logger === true ? {} : o.logger),
            redact: REDACT,
            serializers: { req: requestSerializer },
          },
    bodyLimit: o.bodyLimit ?? 256 * 1024,
    // Connection ids carry ':' and '.', never need decoding games; keep router defaults otherwise.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    // Router-level refusals (a too-long or undecodable path) get the same error shape as the rest.
    frameworkErrors: (error, _request, reply) => {
      void sendError(reply, error);
    },
    // Fastify's own 503 while closing has a shape of its own; the hook below answers in ours.
    return503OnClosing: false,
  });
  // During shutdown a request can still arrive on a keep-alive connection that is busy (only idle
  // ones are reaped). Every route refuses it before its work (route() in server-context.ts: a flag
  // read in the handler, where a global onRequest hook would cost the token route a hook run on
  // every call); Fastify has already set Connection: close, so the client's retry opens a new
  // connection, to another instance.
  const lifecycle = { closing: false };
  app.addHook("preClose", (done) => {
    lifecycle.closing = true;
    done();
  });
  const ctx: ServerContext = {
    lifecycle,
    warden: o.warden,
    store: o.store,
    clock: o.clock,
    hostClock: o.hostClock ?? o.clock,
    book: new RouteBook(),
    metrics: o.metrics,
    publicUrl,
    apiKey: new ApiKeyVerifier(o.apiKeyDigest),
    slack: o.slack,
    signer: o.signer,
    reconnectLinks: o.reconnectLinks,
    allowedReturnOrigins: new Set([new URL(publicUrl).origin, ...o.allowedReturnOrigins]),
    returnUrlSecret: o.returnUrlSecret ?? null,
    fetch: o.fetch ?? globalThis.fetch,
    reconnectUrl: (connectionId, provider) =>
      reconnectUrlOf(publicUrl, provider, connectionId, o.reconnectLinks.sign.bind(o.reconnectLinks)),
  };
  app.setErrorHandler(errorHandler);
  // The API takes JSON only; a text/plain body is a 415, not a string that fails validation.
  app.removeContentTypeParser("text/plain");
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new TokenwardenError("not_found", `no route ${request.method} ${request.url.split("?")[0] ?? ""}`),
    ),
  );
  registerSystemRoutes(app, ctx, o.version ?? "0.1.0");
  registerConnectionRoutes(app, ctx);
  registerOAuthRoutes(app, ctx);
  registerSlackEventRoutes(app, ctx);
  registerProxyRoutes(app, ctx);
  const warden = o.warden;
  o.metrics.bind({
    store: o.store,
    cacheStats: () => warden.stats(),
    providers: warden.providers,
    refreshBacklog: () => warden.refreshBacklog(),
    providerFlags: () => providerFlagsOf(warden),
  });
  await app.ready();
  return app;
}

export type { SlackProvider };
