// The emulator's HTTP server: `/api/<method>` (Web API, §4), `/oauth/v2/authorize` (§2.1) and the
// control API under `/_emulator/*`. Plain node:http: the auth.test path is a handful of Map lookups.
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createEmulatorClock } from "./clock.js";
import { DECISION_PATH } from "./consent-page.js";
import type { ApiCall, EmulatorContext, Reply } from "./context.js";
import { errorReply } from "./context.js";
import type { AppCredentials, SlackEmulatorControl } from "./control.js";
import { createControl, credentialsOf } from "./control.js";
import { handleControl } from "./control-routes.js";
import { CounterSet } from "./counters.js";
import { EventDispatcher } from "./events.js";
import { FaultBook } from "./faults.js";
import { parseArgs, readBody, sendHtml, sendJson } from "./http-io.js";
import { handleAuthorize, handleDecision, oauthV2Access, oauthV2Exchange } from "./oauth-routes.js";
import { DEFAULT_KNOBS, SlackState } from "./state.js";
import { callWebApi, WEB_API_METHODS } from "./web-api-routes.js";

export interface SlackEmulatorOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** `expires_in` of rotating tokens; default 43200 (§3.2). */
  accessTtlSeconds?: number;
  /** How long a used refresh token keeps working; default 120 (§3.4, [U]). */
  refreshGraceSeconds?: number;
  /** Unexpired rotating access tokens per credential; default 2 (§3.4). */
  activeTokenLimit?: number;
  /** Auth code lifetime; default 600 (§2.2). */
  codeTtlSeconds?: number;
  /** Added to every Web API call; default 0. */
  latencyMs?: number;
  /** Where events go for apps without their own events URL (the demo app among them). */
  eventsUrl?: string;
  /** `/oauth/v2/authorize` redirects at once instead of showing the consent page; default false. */
  autoApprove?: boolean;
  /** Base time source, epoch ms; share a test's fake clock here. `advance()` adds on top. */
  now?: () => number;
  /** Delay before each event retry (its length = number of retries); default [0, 10, 50]. */
  eventRetryDelaysMs?: number[];
  /** How long an event delivery waits for a 2xx; default 3000 (§6.1). */
  eventTimeoutMs?: number;
}

export interface SlackEmulator {
  /** `http://host:port`: SLACK_BASE_URL for clients (`/api/*` and `/oauth/v2/authorize` below it). */
  url: string;
  port: number;
  /** Created at start: rotation on, redirect URL http://127.0.0.1 (any loopback host, port and path). */
  demoApp: AppCredentials;
  /** Created at start with one user, so an install needs no setup. */
  demoTeam: { teamId: string; name: string; userId: string };
  control: SlackEmulatorControl;
  close(): Promise<void>;
}

const HTML_500 =
  "<!DOCTYPE html><html><head><title>Server Error | Slack</title></head><body><h1>Server Error</h1>" +
  "<p>It seems like there's a problem. Please try again in a moment.</p></body></html>";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts an emulated Slack on loopback.
 *
 * @example
 * const emu = await startSlackEmulator({ accessTtlSeconds: 3600 });
 * const install = emu.control.install({ clientId: emu.demoApp.clientId });
 * emu.control.advance(3600); // the bot token now answers token_expired
 * await emu.close();
 */
export async function startSlackEmulator(options: SlackEmulatorOptions = {}): Promise<SlackEmulator> {
  const clock = createEmulatorClock(options.now);
  const counters = new CounterSet();
  const events = new EventDispatcher({
    clock,
    defaultEventsUrl: options.eventsUrl ?? null,
    retryDelaysMs: options.eventRetryDelaysMs ?? [0, 10, 50],
    timeoutMs: options.eventTimeoutMs ?? 3000,
  });
  const knobs = {
    ...DEFAULT_KNOBS,
    ...(options.accessTtlSeconds === undefined ? {} : { accessTtlSeconds: options.accessTtlSeconds }),
    ...(options.refreshGraceSeconds === undefined
      ? {}
      : { refreshGraceSeconds: options.refreshGraceSeconds }),
    ...(options.activeTokenLimit === undefined ? {} : { activeTokenLimit: options.activeTokenLimit }),
    ...(options.codeTtlSeconds === undefined ? {} : { codeTtlSeconds: options.codeTtlSeconds }),
  };
  const state: SlackState = new SlackState(clock, knobs, counters, (domainEvents) => {
    const first = domainEvents[0];
    const app = first === undefined ? undefined : state.appsById.get(first.appId);
    if (app !== undefined) events.dispatch(app, domainEvents);
  });
  const ctx: EmulatorContext = {
    state,
    faults: new FaultBook(options.latencyMs ?? 0),
    events,
    counters,
    clock,
    authorize: {
      mode: options.autoApprove === true ? "approve" : "consent",
      teamId: null,
      userId: null,
      enterpriseInstall: false,
    },
    pendingConsents: new Map(),
  };
  const control = createControl(ctx);
  const demoApp = credentialsOf(state.createApp({ name: "Demo App" }));
  const team = state.createTeam({ name: "Demo Workspace" });
  const demoTeam = {
    teamId: team.teamId,
    name: team.name,
    userId: state.createUser(team.teamId, { name: "demo-user" }).userId,
  };

  const server: Server = createServer((req, res) => {
    handle(ctx, control, { demo: () => ({ demoApp, demoTeam }) }, req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, { ok: false, error: "fatal_error", detail: String(error) }, 500);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${hostForUrl}:${address.port}`,
    port: address.port,
    demoApp,
    demoTeam,
    control,
    close: () =>
      new Promise<void>((resolve) => {
        events.abortAll();
        server.close(() => resolve());
        server.closeAllConnections(); // also ends requests held by a `hang` fault
      }),
  };
}

async function handle(
  ctx: EmulatorContext,
  control: SlackEmulatorControl,
  extraControl: Record<string, () => unknown>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const rawUrl = req.url ?? "/";
  const q = rawUrl.indexOf("?");
  const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : rawUrl.slice(q + 1));
  const body = await readBody(req);

  if (path.startsWith("/api/")) return handleApi(ctx, path.slice(5), query, body, req, res);
  if (path === "/oauth/v2/authorize" && req.method === "GET") return handleAuthorize(ctx, query, res);
  if (path === DECISION_PATH && req.method === "POST") {
    return handleDecision(ctx, new URLSearchParams(body.toString("utf8")), res);
  }
  if (path.startsWith("/_emulator/")) {
    return handleControl(control, extraControl, path.slice(11), req.method ?? "GET", query, body, res);
  }
  sendHtml(res, "<!DOCTYPE html><title>Not Found</title><h1>404</h1>", 404);
}

const API_METHODS: Record<string, (call: ApiCall) => Reply> = {
  "oauth.v2.access": oauthV2Access,
  "oauth.v2.exchange": oauthV2Exchange,
};
for (const [name, def] of Object.entries(WEB_API_METHODS))
  API_METHODS[name] = (call) => callWebApi(call, def);

/** One Web API call: counted, delayed, faulted, rate limited, parsed, then run (§4.6). */
async function handleApi(
  ctx: EmulatorContext,
  method: string,
  query: URLSearchParams,
  body: Buffer,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  ctx.counters.countCall(method);
  const latency = ctx.faults.latencyFor(method);
  if (latency > 0) await sleep(latency);

  let loseResponse = false;
  let fatalAfterCommit = false;
  const fault = ctx.faults.take(method);
  if (fault !== null) {
    switch (fault.kind) {
      case "http_500":
        return sendHtml(res, HTML_500, 500); // infrastructure failure: HTML, not JSON (§4.5)
      case "internal_error":
        return sendJson(res, { ok: false, error: "internal_error" });
      case "error":
        // Any code, refused before the call runs: how each of Slack's answers is acted on, end to end.
        return sendJson(res, { ok: false, error: fault.error });
      case "ratelimited":
        return sendRateLimited(res, fault.retryAfterSeconds ?? 1);
      case "hang":
        if (fault.hangMs === undefined) return; // held until the client gives up or the emulator closes
        await sleep(fault.hangMs);
        break;
      case "lost_response":
        loseResponse = true; // commit whatever the call does, then drop the connection unanswered
        break;
      case "fatal_error":
        // Slack's fatal_error (HTTP 200): "some aspect of the operation succeeded before the error
        // was raised" (§4.5). So the call runs and commits (a refresh spends its token), then fails.
        fatalAfterCommit = true;
        break;
    }
  }
  // §4.6 step 1: rate limit before anything else is looked at.
  const retryAfter = ctx.faults.checkRateLimit(method, ctx.clock.now());
  if (retryAfter !== null) return sendRateLimited(res, retryAfter);

  const parsed = parseArgs(req.headers["content-type"], query, body);
  const handler = Object.hasOwn(API_METHODS, method) ? API_METHODS[method] : undefined;
  let reply: Reply;
  if (!parsed.ok)
    reply = errorReply(parsed.error); // §4.6 step 2
  else if (handler === undefined) reply = errorReply("unknown_method");
  else reply = handler({ ctx, req, method, parsed: parsed.value });

  if (loseResponse) {
    req.socket.destroy();
    return;
  }
  if (fatalAfterCommit) return sendJson(res, { ok: false, error: "fatal_error" });
  sendJson(res, reply.body, reply.status, reply.headers);
}

/** HTTP 429 + `Retry-After` + `{"ok":false,"error":"ratelimited"}` (§5). */
function sendRateLimited(res: ServerResponse, retryAfterSeconds: number): void {
  sendJson(res, { ok: false, error: "ratelimited" }, 429, { "retry-after": String(retryAfterSeconds) });
}
