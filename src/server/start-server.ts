/**
 * `tokenwarden serve` as a function: opens the store and the warden, builds the
 * app, listens, and runs the background work (refresher, webhook dispatcher,
 * health checks). `close()` is the graceful shutdown: stop accepting, finish
 * in-flight requests and refreshes (bounded), stop the dispatchers, close the store.
 */

import { createServer } from "node:net";
import { hostname } from "node:os";
import type { FastifyInstance } from "fastify";
import pino from "pino";
import { loadConfig, RETURN_URL_SECRET_MIN_LENGTH } from "../config.js";
import type { Clock, Logger, Random } from "../core/ports.js";
import { reconnectUrlOf } from "../core/reconnect-url.js";
import { ReconnectLinkSigner } from "../crypto/reconnect-link.js";
import type { EngineTimings } from "../engine/context.js";
import { cryptoRandom } from "../engine/crypto-random.js";
import { defaultLogger } from "../engine/default-logger.js";
import { openKeyedStore } from "../engine/open-keyed-store.js";
import { systemClock } from "../engine/system-clock.js";
import { settlesWithin } from "../engine/timeout.js";
import { createWarden, type Warden } from "../engine/warden.js";
import { createSlackProvider } from "../providers/slack/slack-provider.js";
import { buildApp } from "./app.js";
import { resolveApiKey } from "./auth.js";
import { EventPruner } from "./event-pruner.js";
import { HealthChecker } from "./health-checker.js";
import { createMetrics } from "./metrics.js";
import { OAuthStateSigner } from "./oauth-flow.js";
import { WebhookDispatcher } from "./webhooks/dispatcher.js";

export interface StartServerOptions {
  /** Environment (DESIGN.md "Contract"); default process.env. */
  env?: NodeJS.ProcessEnv;
  port?: number;
  host?: string;
  /** Overrides TOKENWARDEN_DATABASE_URL. */
  database?: string;
  clock?: Clock;
  random?: Random;
  fetch?: typeof globalThis.fetch;
  /** For the engine's own messages; the HTTP log is pino on stderr at TOKENWARDEN_LOG_LEVEL. */
  logger?: Logger;
  httpLog?: boolean;
  timings?: Partial<EngineTimings>;
  /** Background work; all on by default. */
  refresher?: boolean | { intervalMs?: number };
  healthChecks?: boolean | { periodMs?: number; perSecond?: number };
  webhookIntervalMs?: number;
  /** PostgreSQL schema (tests). */
  schema?: string;
  /** Pruning of the event log (on by default, per TOKENWARDEN_EVENT_RETENTION_DAYS). */
  eventPruning?: boolean | { everyMs?: number };
  /** The whole graceful shutdown's budget (default 25 s: inside Kubernetes' 30 s grace period). */
  shutdownTimeoutMs?: number;
}

export interface RunningServer {
  app: FastifyInstance;
  warden: Warden;
  url: string;
  publicUrl: string;
  /** The API key when this process generated it (first start): print once. */
  generatedApiKey: string | null;
  /** Providers this server can install, refresh and check (Slack when SLACK_CLIENT_ID/SECRET are set). */
  providers: readonly string[];
  /** A connection's reconnect link, signed, as the API and webhooks hand it out. */
  reconnectUrl(connectionId: string, provider?: string): string;
  /** Whether signed Slack events are taken (SLACK_SIGNING_SECRET is set); without it they are refused. */
  slackEvents: boolean;
  dispatcher: WebhookDispatcher | null;
  healthChecker: HealthChecker | null;
  close(): Promise<void>;
}

const SHUTDOWN_TIMEOUT_MS = 25_000;

function splitList(value: string | undefined): string[] {
  return (value ?? "")
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** A free port when none was given but the public URL must name one (reconnect links, redirect_uri). */
async function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, host, () => {
      const address = s.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      s.close(() => resolvePort(port));
    });
  });
}

export async function startServer(options: StartServerOptions = {}): Promise<RunningServer> {
  const env = options.env ?? process.env;
  const config = loadConfig({
    ...env,
    ...(options.database === undefined ? {} : { TOKENWARDEN_DATABASE_URL: options.database }),
  });
  const hostClock = options.clock ?? systemClock;
  const random = options.random ?? cryptoRandom;
  const host = options.host ?? "127.0.0.1";
  const requestedPort = options.port ?? 3003;
  const port = requestedPort === 0 && config.publicUrl === null ? await freePort(host) : requestedPort;
  const publicUrl = config.publicUrl ?? `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const doFetch = options.fetch ?? globalThis.fetch;
  const stderrLogger: Logger = options.logger ?? defaultLogger(env);
  const metrics = createMetrics(stderrLogger);

  if (config.returnUrlSecret === null && env["TOKENWARDEN_WEBHOOK_SECRET"]) {
    stderrLogger.warn(
      {},
      `TOKENWARDEN_WEBHOOK_SECRET is shorter than ${RETURN_URL_SECRET_MIN_LENGTH} characters: redirects back to a return_url are left unsigned (anyone can have one signed, so a short secret could be guessed from them); use a longer, random one`,
    );
  }
  const databaseUrl = config.database.url.reveal();
  const { store, keys } = await openKeyedStore(
    {
      database: databaseUrl,
      encryptionKey: config.encryptionKey?.reveal(),
      nodeEnv: config.nodeEnv,
      onDevKeyCreated: (path) =>
        stderrLogger.warn(
          { path },
          "no TOKENWARDEN_ENCRYPTION_KEY: generated a development key file; set the variable in production",
        ),
    },
    { outbox: config.webhook !== null, ...(options.schema === undefined ? {} : { schema: options.schema }) },
  );
  const reconnectLinks = ReconnectLinkSigner.fromKeyRing(keys);
  const reconnectUrl = (id: string, provider = "slack") =>
    reconnectUrlOf(publicUrl, provider, id, reconnectLinks.sign.bind(reconnectLinks));
  const warden = await createWarden({
    store,
    reconnectLinks,
    clock: hostClock,
    random,
    logger: stderrLogger,
    fetch: doFetch,
    publicUrl,
    env,
    ...(options.timings === undefined ? {} : { timings: options.timings }),
    ...(config.slack === null
      ? {}
      : {
          providers: {
            slack: {
              clientId: config.slack.clientId,
              clientSecret: config.slack.clientSecret.reveal(),
              baseUrl: config.slack.baseUrl,
            },
          },
        }),
    onRefresh: (o) => metrics.observeRefresh(o),
  });
  // The warden's: on PostgreSQL the database's clock, so the outbox's leases, the single-use marks and
  // the OAuth state's expiry agree across instances as refresh leases do. What is checked against a
  // clock outside the deployment (Slack's request timestamps, receivers' webhook windows) stays on
  // this host's.
  const clock = warden.clock;
  try {
    const apiKey = await resolveApiKey(store, config.apiKey?.reveal() ?? null);
    const signer = OAuthStateSigner.fromKeyRing(keys);
    const slack =
      config.slack === null
        ? null
        : {
            provider: createSlackProvider({
              clientId: config.slack.clientId,
              clientSecret: config.slack.clientSecret,
              baseUrl: config.slack.baseUrl,
              fetch: doFetch,
              clock,
            }),
            baseUrl: config.slack.baseUrl,
            signingSecret: config.slack.signingSecret?.reveal() ?? null,
            scopes: splitList(env["TOKENWARDEN_SLACK_SCOPES"] ?? "chat:write,channels:read,users:read"),
            userScopes: splitList(env["TOKENWARDEN_SLACK_USER_SCOPES"]),
          };
    const app = await buildApp({
      warden,
      store,
      clock,
      hostClock,
      metrics,
      publicUrl,
      apiKeyDigest: apiKey.digest,
      signer,
      reconnectLinks,
      slack,
      allowedReturnOrigins: config.returnUrlOrigins,
      returnUrlSecret: config.returnUrlSecret,
      fetch: doFetch,
      // stderr, like the engine's: stdout is for what a command prints (the API key on a first start).
      logger: options.httpLog === false ? false : { level: config.logLevel, stream: pino.destination(2) },
    });
    const url = await app.listen({ port, host });

    const owner = `${hostname()}:${process.pid}:${random.token(6)}`;
    const dispatcher =
      config.webhook === null
        ? null
        : new WebhookDispatcher({
            store,
            url: config.webhook.url,
            secret: config.webhook.secret.reveal(),
            clock,
            signingClock: hostClock,
            random,
            logger: stderrLogger,
            owner,
            fetch: doFetch,
            reconnectUrl,
            onDelivery: (outcome) => metrics.observeWebhook(outcome),
            ...(options.webhookIntervalMs === undefined ? {} : { intervalMs: options.webhookIntervalMs }),
          });
    dispatcher?.start();
    if (options.refresher !== false) {
      warden.startRefresher(typeof options.refresher === "object" ? options.refresher : {});
    }
    const healthChecker =
      options.healthChecks === false
        ? null
        : new HealthChecker({
            warden,
            store,
            clock,
            logger: stderrLogger,
            ...(typeof options.healthChecks === "object" ? options.healthChecks : {}),
          });
    healthChecker?.start();
    const eventPruner =
      options.eventPruning === false || config.eventRetentionMs === null
        ? null
        : new EventPruner({
            store,
            clock,
            logger: stderrLogger,
            retentionMs: config.eventRetentionMs,
            ...(typeof options.eventPruning === "object" ? options.eventPruning : {}),
          });
    eventPruner?.start();

    let closing: Promise<void> | null = null;
    return {
      app,
      warden,
      url,
      publicUrl,
      generatedApiKey: apiKey.generated,
      providers: config.slack === null ? [] : ["slack"],
      reconnectUrl,
      slackEvents: config.slack?.signingSecret != null,
      dispatcher,
      healthChecker,
      close() {
        closing ??= (async () => {
          const deadline = performance.now() + (options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS);
          const left = () => Math.max(0, deadline - performance.now());
          // Background work starts nothing new from here; what it has in hand finishes meanwhile.
          const background = Promise.all([healthChecker?.stop(), dispatcher?.stop(), eventPruner?.stop()]);
          // Stop accepting; in-flight requests finish (Fastify waits for them), but not past most of
          // the budget: then their connections are cut.
          const requestsDone = app.close();
          if (!(await settlesWithin(requestsDone, left() * 0.7))) {
            stderrLogger.warn({}, "shutdown: cutting requests still in flight");
            app.server.closeAllConnections();
            await requestsDone;
          }
          if (!(await settlesWithin(background, left() * 0.5))) {
            stderrLogger.warn(
              {},
              "shutdown: a health check or a webhook delivery is still running; closing anyway",
            );
          }
          // Stops the refresher and lets in-flight refreshes persist with what is left (a floor of 2 s:
          // their outcomes are what the budget is for), then closes the store.
          await warden.close({ timeoutMs: Math.max(left(), 2_000) });
        })();
        return closing;
      },
    };
  } catch (error) {
    await warden.close().catch(() => {});
    throw error;
  }
}
