/**
 * How CLI commands reach storage and Slack: flags first, then the environment
 * of DESIGN.md's Contract. The store is opened here (not inside createWarden)
 * so commands that need it directly — `diagnose`, `migrate` — share one handle.
 */

import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { checkPlainHttpUrl, PlainHttpUrlSchema } from "../config.js";
import { TokenwardenError } from "../core/errors.js";
import type { Logger, Store } from "../core/ports.js";
import { reconnectUrlOf } from "../core/reconnect-url.js";
import type { EncryptionKey } from "../crypto/key-ring.js";
import { ReconnectLinkSigner } from "../crypto/reconnect-link.js";
import { openKeyedStore } from "../engine/open-keyed-store.js";
import { createWarden, type Warden } from "../engine/warden.js";

export const DEFAULT_DATABASE = "sqlite:./tokenwarden.db";

export interface StoreFlags {
  database?: string;
}

export interface SlackFlags {
  clientId?: string;
  clientSecret?: string;
  slackBaseUrl?: string;
}

/** Adds `--database` to a command that reads or writes connections. */
export function withStoreOption(cmd: Command): Command {
  return cmd.option(
    "--database <url>",
    "sqlite:PATH or postgres://… (default: TOKENWARDEN_DATABASE_URL, else sqlite:./tokenwarden.db)",
  );
}

/** Adds the Slack app flags; each falls back to its environment variable. */
export function withSlackOptions(cmd: Command): Command {
  return cmd
    .option("--client-id <id>", "Slack app client id (default: SLACK_CLIENT_ID)")
    .option("--client-secret <secret>", "Slack app client secret (default: SLACK_CLIENT_SECRET)")
    .option(
      "--slack-base-url <url>",
      "Slack's origin, e.g. the emulator (default: SLACK_BASE_URL, else https://slack.com)",
    );
}

export function databaseUrl(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): string {
  return flags.database ?? (env["TOKENWARDEN_DATABASE_URL"] || DEFAULT_DATABASE);
}

/** True when a store is configured or the default SQLite file exists: worth looking into without creating one. */
export function storeConfigured(flags: StoreFlags, env: NodeJS.ProcessEnv = process.env): boolean {
  if (flags.database !== undefined || (env["TOKENWARDEN_DATABASE_URL"] ?? "") !== "") return true;
  return existsSync(resolve("tokenwarden.db"));
}

export function slackBaseUrl(flags: SlackFlags, env: NodeJS.ProcessEnv = process.env): string {
  const url = flags.slackBaseUrl ?? (env["SLACK_BASE_URL"] || "https://slack.com");
  // Parsed, not pattern-matched: `http://[::1` looks like a URL, and fetch's refusal of it would
  // be reported as Slack being unreachable. The value is not echoed (it may hold user:password@).
  if (/\s/.test(url) || !PlainHttpUrlSchema.safeParse(url).success) {
    const source = flags.slackBaseUrl === undefined ? "SLACK_BASE_URL" : "--slack-base-url";
    throw new TokenwardenError("invalid_input", `${source} is not a valid http(s) URL`);
  }
  return url.replace(/\/+$/, "");
}

export function slackCredentials(
  flags: SlackFlags,
  env: NodeJS.ProcessEnv = process.env,
): { clientId: string; clientSecret: string } | null {
  const clientId = flags.clientId ?? env["SLACK_CLIENT_ID"] ?? "";
  const clientSecret = flags.clientSecret ?? env["SLACK_CLIENT_SECRET"] ?? "";
  if (clientId === "" && clientSecret === "") return null;
  if (clientId === "")
    throw new TokenwardenError("invalid_input", "--client-id (or SLACK_CLIENT_ID) is missing");
  if (clientSecret === "") {
    throw new TokenwardenError("invalid_input", "--client-secret (or SLACK_CLIENT_SECRET) is missing");
  }
  return { clientId, clientSecret };
}

/** Engine log lines go to stderr as one readable line each, and only with --verbose. */
export function cliLogger(verbose: boolean): Logger {
  const write =
    (level: string) =>
    (obj: object, msg?: string): void => {
      if (!verbose) return;
      // Secrets are `Secret`s and print as [redacted]; the engine never logs a raw token.
      process.stderr.write(`tokenwarden: ${level}: ${msg ?? ""} ${JSON.stringify(obj)}\n`);
    };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}

/** The engine's rule (createWarden's `webhooks` default): webhooks are on when a URL is set. */
function webhooksConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env["TOKENWARDEN_WEBHOOK_URL"] ?? "") !== "";
}

/** Opens (and migrates) the store with the configured key; warns once when a development key was generated. */
export async function openCliStore(
  flags: StoreFlags,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ store: Store; keys: EncryptionKey[] }> {
  const database = databaseUrl(flags, env);
  // A connection the CLI marks dead must be announced like one the server marks: with webhooks
  // configured, the change writes its webhook to the outbox in the same transaction, and the
  // server's dispatcher (wherever `tokenwarden serve` runs on this store) delivers it.
  const { store, keys } = await openKeyedStore(
    {
      database,
      encryptionKey: env["TOKENWARDEN_ENCRYPTION_KEY"],
      nodeEnv: env["NODE_ENV"],
      onDevKeyCreated: (path) =>
        process.stderr.write(
          `tokenwarden: warning: no TOKENWARDEN_ENCRYPTION_KEY; generated a development key in ${path} (set the variable in production)\n`,
        ),
    },
    { outbox: webhooksConfigured(env) },
  );
  await store.migrate();
  return { store, keys };
}

export interface CliWarden {
  warden: Warden;
  store: Store;
  slackConfigured: boolean;
  /** A dead connection's reconnect link, when `TOKENWARDEN_PUBLIC_URL` says where the server is. */
  reconnectUrl(connectionId: string, provider: string): string | null;
  close(): Promise<void>;
}

/** A warden for one command: the store from flags/env, Slack from flags/env when given. */
export async function openCliWarden(
  flags: StoreFlags & SlackFlags,
  verbose: boolean,
  env: NodeJS.ProcessEnv = process.env,
): Promise<CliWarden> {
  const slack = slackCredentials(flags, env);
  const baseUrl = slackBaseUrl(flags, env);
  // Named as the operator set it (createWarden, handed it as `publicUrl`, would name the option).
  checkPlainHttpUrl(env["TOKENWARDEN_PUBLIC_URL"], "TOKENWARDEN_PUBLIC_URL");
  const { store, keys } = await openCliStore(flags, env);
  // Signed as the server signs them: a link the CLI prints works there as one the API handed out.
  const reconnectLinks = ReconnectLinkSigner.fromKeyRing(keys);
  const warden = await createWarden({
    store,
    reconnectLinks,
    logger: cliLogger(verbose),
    env: {},
    // A one-off command's refused credentials are its own: reported to the operator running it, not
    // recorded for (and paging) the servers on this store, which may well hold the right secret.
    providerState: "local",
    ...(slack === null ? {} : { providers: { slack: { ...slack, baseUrl } } }),
    ...(env["TOKENWARDEN_PUBLIC_URL"] ? { publicUrl: env["TOKENWARDEN_PUBLIC_URL"] } : {}),
  });
  const publicUrl = env["TOKENWARDEN_PUBLIC_URL"] || null;
  return {
    warden,
    store,
    slackConfigured: slack !== null,
    reconnectUrl: (id, provider) =>
      publicUrl === null
        ? null
        : reconnectUrlOf(publicUrl, provider, id, reconnectLinks.sign.bind(reconnectLinks)),
    close: () => warden.close(),
  };
}

/** The global `--verbose` flag, from any subcommand. */
export function isVerbose(cmd: Command): boolean {
  return cmd.optsWithGlobals<{ verbose?: boolean }>().verbose === true;
}
