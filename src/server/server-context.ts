import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Clock, Store } from "../core/ports.js";
import type { Secret } from "../core/secret.js";
import type { ReconnectLinkSigner } from "../crypto/reconnect-link.js";
import type { Warden } from "../engine/warden.js";
import type { SlackProvider } from "../providers/slack/slack-provider.js";
import type { ApiKeyVerifier } from "./auth.js";
import { HttpError } from "./error-reply.js";
import type { Metrics } from "./metrics.js";
import type { OAuthStateSigner } from "./oauth-flow.js";
import type { RouteBook, RouteSpec } from "./route-book.js";

/** What every route module gets; built once per app by `buildApp`. */
export interface ServerContext {
  /** Set once the server starts closing: routes then answer 503 shutting_down. */
  lifecycle: { readonly closing: boolean };
  warden: Warden;
  store: Store;
  /** The warden's clock: stored instants and leases, which other instances compare (the database's, on PostgreSQL). */
  clock: Clock;
  /** This host's own clock: for timestamps checked against clocks outside the deployment (Slack's request signatures). */
  hostClock: Clock;
  book: RouteBook;
  metrics: Metrics;
  /** Origin users reach this server at, without a trailing slash. */
  publicUrl: string;
  apiKey: ApiKeyVerifier;
  /** null when Slack is not configured: the install flow, events and proxy answer `provider_misconfigured`. */
  slack: {
    provider: SlackProvider;
    baseUrl: string;
    signingSecret: string | null;
    scopes: string[];
    userScopes: string[];
  } | null;
  signer: OAuthStateSigner;
  /** Reconnect links: only a signed one learns what became of the connection it names. */
  reconnectLinks: ReconnectLinkSigner;
  /** Origins a `return_url` may point at (no open redirect). */
  allowedReturnOrigins: ReadonlySet<string>;
  /** Signs the redirects back to a return_url; null leaves them unsigned. */
  returnUrlSecret: Secret | null;
  fetch: typeof globalThis.fetch;
  reconnectUrl(connectionId: string, provider: string): string | null;
}

/** Async, or synchronous when it has already sent its reply (then it returns undefined). */
type Handler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown> | undefined;

/** Registers a route described in the book; the API key is checked first when the spec says so. */
export function route(app: FastifyInstance, ctx: ServerContext, spec: RouteSpec, handler: Handler): void {
  ctx.book.add(spec);
  const methods = spec.method === "ANY" ? ["GET", "POST", "PUT", "PATCH", "DELETE"] : [spec.method];
  const keyInHandler = spec.auth && spec.method === "GET";
  app.route({
    method: methods as ["GET"],
    url: spec.url,
    // A route that takes a body checks the key in onRequest, before the body is read: a caller
    // without the key is told 401, not what is wrong with its body, and the server reads and parses
    // no body for anyone on the network. A GET has no body to read, and the token route is one: its
    // key is checked first thing in the handler, one hook run less on the hot path.
    ...(spec.auth && !keyInHandler
      ? {
          onRequest: (request: FastifyRequest, _reply: FastifyReply, done: (error?: Error) => void) => {
            done(ctx.apiKey.refusal(request.headers.authorization) ?? undefined);
          },
        }
      : {}),
    handler: (request, reply) => {
      if (ctx.lifecycle.closing) {
        throw new HttpError("shutting_down", "the server is shutting down; retry the request");
      }
      if (keyInHandler) ctx.apiKey.assert(request.headers.authorization);
      return handler(request, reply);
    },
  });
}
