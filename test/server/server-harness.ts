// A server under test: startServer (what `tokenwarden serve` runs) on a real store, beside the Slack
// emulator over HTTP, with one FakeClock shared by both, and a webhook receiver that can be down.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { expect } from "vitest";
import type { SlackEmulator, SlackEmulatorOptions } from "../../src/emulator/index.js";
import { startSlackEmulator } from "../../src/emulator/index.js";
import { signSlackRequest } from "../../src/providers/slack/slack-signature.js";
import { type RunningServer, type StartServerOptions, startServer } from "../../src/server/start-server.js";
import { FAST_TIMINGS } from "../helpers/engine-harness.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { createPgSchema, type PgSchema, TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import type { StoreKind } from "../helpers/store-under-test.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

export const API_KEY = "tw_test_key_0123456789abcdef";

/** The bot credential of an emulator install, as `connections.import` takes it (12-hour tokens). */
export function botFromInstall(
  install: { access_token?: string; refresh_token?: string },
  providerData?: Record<string, unknown>,
) {
  return {
    accessToken: install.access_token ?? "",
    refreshToken: install.refresh_token ?? null,
    expiresIn: 43_200,
    ...(providerData === undefined ? {} : { providerData }),
  };
}
export const WEBHOOK_SECRET = "whsec_test_0123456789";

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on a fixed port that can be taken down and brought back. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  port = 0;
  /** Answer 500 to this many more requests, after recording them (a receiver that fails after receipt). */
  failNext = 0;
  /** Headers of those 500s (a `Retry-After`). */
  failHeaders: () => Record<string, string> = () => ({});
  #server: Server | null = null;
  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks`;
  }
  async up(): Promise<void> {
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString();
      });
      req.on("end", () => {
        this.received.push({ headers: req.headers, body });
        if (this.failNext > 0) {
          this.failNext--;
          res.writeHead(500, this.failHeaders()).end("oops");
        } else res.writeHead(200).end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    const address = server.address();
    if (typeof address === "object" && address !== null) this.port = address.port;
    this.#server = server;
  }
  async down(): Promise<void> {
    const s = this.#server;
    this.#server = null;
    if (s)
      await new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => resolve());
      });
  }
}

export interface ServerHarness {
  kind: StoreKind;
  clock: FakeClock;
  emu: SlackEmulator;
  server: RunningServer;
  env: NodeJS.ProcessEnv;
  database: string;
  schema: string | undefined;
  /** Starts (another, or again after close) a server on the same store. */
  start(extra?: Partial<StartServerOptions>): Promise<RunningServer>;
  /** fetch against the server with the API key. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** A new workspace with the demo app installed, imported into the first server (bot credential); its id. */
  installAndImport(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function openServerHarness(
  kind: StoreKind,
  options: {
    emulator?: SlackEmulatorOptions;
    webhookUrl?: string;
    server?: Partial<StartServerOptions>;
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<ServerHarness> {
  const clock = new FakeClock(Date.UTC(2026, 5, 1));
  const emu = await startSlackEmulator({ now: () => clock.now(), ...options.emulator });
  let sqlite: TmpSqlite | null = null;
  let pg: PgSchema | null = null;
  if (kind === "sqlite") sqlite = await createTmpSqlite();
  else pg = await createPgSchema(`server-${Math.random()}`);
  const database = sqlite ? `sqlite:${sqlite.path}` : TEST_POSTGRES_URL;
  const schema = pg?.schema;
  const env: NodeJS.ProcessEnv = {
    NODE_ENV: "test",
    TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
    TOKENWARDEN_API_KEY: API_KEY,
    SLACK_CLIENT_ID: emu.demoApp.clientId,
    SLACK_CLIENT_SECRET: emu.demoApp.clientSecret,
    SLACK_SIGNING_SECRET: emu.demoApp.signingSecret,
    SLACK_BASE_URL: emu.url,
    ...(options.webhookUrl
      ? { TOKENWARDEN_WEBHOOK_URL: options.webhookUrl, TOKENWARDEN_WEBHOOK_SECRET: WEBHOOK_SECRET }
      : {}),
    ...options.env,
  };
  const servers: RunningServer[] = [];
  const start = async (extra: Partial<StartServerOptions> = {}) => {
    const s = await startServer({
      env,
      port: 0,
      database,
      ...(schema === undefined ? {} : { schema }),
      clock,
      httpLog: false,
      healthChecks: false,
      refresher: false,
      timings: FAST_TIMINGS,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
      ...options.server,
      ...extra,
    });
    servers.push(s);
    return s;
  };
  const server = await start();
  return {
    kind,
    clock,
    emu,
    server,
    env,
    database,
    schema,
    start,
    api: (path, init = {}) =>
      fetch(`${server.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${API_KEY}`, ...(init.headers as Record<string, string>) },
      }),
    async installAndImport(name) {
      const team = emu.control.createTeam({ name });
      const install = emu.control.install({ clientId: emu.demoApp.clientId, teamId: team.teamId });
      await server.warden.connections.import({
        id: team.teamId,
        provider: "slack",
        credentials: { bot: botFromInstall(install) },
      });
      return team.teamId;
    },
    async close() {
      await Promise.allSettled(servers.map((s) => s.close()));
      await emu.close();
      await sqlite?.remove();
      await pg?.drop();
    },
  };
}

/** POSTs `body` to the server's `/slack/events` in process, signed as Slack signs it now (`retry`: X-Slack-Retry-Num). */
export function postSlackEvent(h: ServerHarness, body: string, retry?: number) {
  const ts = Math.floor(h.clock.now() / 1000);
  return h.server.app.inject({
    method: "POST",
    url: "/slack/events",
    headers: {
      "content-type": "application/json",
      "x-slack-request-timestamp": String(ts),
      "x-slack-signature": signSlackRequest(h.emu.demoApp.signingSecret, ts, body),
      ...(retry === undefined ? {} : { "x-slack-retry-num": String(retry) }),
    },
    payload: body,
  });
}

/** Follows one redirect hop by hand (the test plays the browser). */
export async function hop(url: string): Promise<Response> {
  return fetch(url, { redirect: "manual" });
}

/** Plays the browser through an install link: our start, Slack's consent, our callback (its response). */
export async function installViaBrowser(h: ServerHarness, startUrl: string): Promise<Response> {
  const start = await hop(startUrl);
  expect(start.status).toBe(302);
  const authorize = start.headers.get("location") ?? "";
  expect(authorize.startsWith(`${h.emu.url}/oauth/v2/authorize?`)).toBe(true);
  const consent = await hop(authorize);
  expect(consent.status).toBe(302);
  const callback = consent.headers.get("location") ?? "";
  expect(callback.startsWith(`${h.server.publicUrl}/oauth/slack/callback?`)).toBe(true);
  return hop(callback);
}

/** The app's plain install link ("Add to Slack"), or with `connectionId` a bare reconnect link (anyone's to type). */
export function installLink(h: ServerHarness, connectionId?: string): string {
  const plain = `${h.server.publicUrl}/oauth/slack/install`;
  return connectionId === undefined ? plain : `${plain}?connection_id=${connectionId}`;
}

/** A new workspace named `name` with a member named after each of `members` (in order); their ids. */
export function workspaceWith<M extends string = never>(
  h: ServerHarness,
  name: string,
  ...members: M[]
): Record<"teamId" | M, string> {
  const { teamId } = h.emu.control.createTeam({ name });
  const ids: Record<string, string> = { teamId };
  for (const member of members) ids[member] = h.emu.control.createUser(teamId, { name: member }).userId;
  return ids as Record<"teamId" | M, string>;
}

/**
 * Installs `clientId` (the demo app's unless given) into `teamId` as `userId` (the emulator's first
 * member unless given), with a bot when `botScopes` is given, and imports it as `id` with its 12-hour
 * user token. Its metadata names the installer (authed_user_id) unless `named` is false. The user token.
 */
export async function importMember(
  h: ServerHarness,
  o: {
    id: string;
    teamId: string;
    userId?: string;
    clientId?: string;
    botScopes?: string[];
    metadata?: Record<string, unknown>;
    named?: boolean;
  },
): Promise<string> {
  const install = h.emu.control.install({
    clientId: o.clientId ?? h.emu.demoApp.clientId,
    teamId: o.teamId,
    ...(o.userId === undefined ? {} : { userId: o.userId }),
    ...(o.botScopes === undefined ? {} : { botScopes: o.botScopes }),
    userScopes: ["users:read"],
  });
  const user = install.authed_user as { id: string; access_token: string; refresh_token: string };
  await h.server.warden.connections.import({
    id: o.id,
    provider: "slack",
    credentials: {
      ...(o.botScopes === undefined ? {} : { bot: botFromInstall(install) }),
      user: { accessToken: user.access_token, refreshToken: user.refresh_token, expiresIn: 43_200 },
    },
    metadata: { team_id: o.teamId, ...(o.named === false ? {} : { authed_user_id: user.id }), ...o.metadata },
  });
  return user.access_token;
}

/** The user token `id` holds now. */
export async function userToken(h: ServerHarness, id: string): Promise<string> {
  return (await h.server.warden.getToken(id, { kind: "user" })).accessToken;
}

/** The metadata `id` holds now. */
export async function metadataOf(h: ServerHarness, id: string): Promise<Record<string, unknown>> {
  return (await h.server.warden.connections.get(id)).metadata;
}
