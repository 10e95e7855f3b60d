import type { Command } from "commander";
import { TokenwardenError } from "../../core/errors.js";
import { type Diagnosis, diagnosisJson } from "../../diagnose/diagnosis.js";
import { renderDiagnosis } from "../../diagnose/render-diagnosis.js";
import { fingerprint, foreignCharacter } from "../../diagnose/token-shape.js";
import { diagnoseApp } from "../diagnose/diagnose-app.js";
import { diagnoseConnection } from "../diagnose/diagnose-connection.js";
import { diagnoseToken } from "../diagnose/diagnose-token.js";
import { EXIT } from "../exit.js";
import {
  isVerbose,
  openCliWarden,
  type SlackFlags,
  type StoreFlags,
  slackBaseUrl,
  slackCredentials,
  storeConfigured,
  withSlackOptions,
  withStoreOption,
} from "../open-warden.js";
import { printJson } from "../output.js";
import { readStdin } from "../read-input.js";

/** 0 when nothing is wrong (or nothing was checked), 1 when a problem was found. */
function exitFor(d: Diagnosis): number {
  return d.verdict === "healthy" || d.verdict === "unchecked" ? EXIT.ok : EXIT.failed;
}

interface TokenFlags extends SlackFlags, StoreFlags {
  tokenEnv?: string;
  refresh?: boolean;
  spendUnknown?: boolean;
  scope?: string;
  json?: boolean;
}

async function tokenFrom(arg: string | undefined, flags: TokenFlags): Promise<string> {
  if (arg !== undefined && flags.tokenEnv !== undefined) {
    throw new TokenwardenError(
      "invalid_input",
      "give the token as an argument or with --token-env, not both",
    );
  }
  let token: string;
  if (flags.tokenEnv !== undefined) {
    token = process.env[flags.tokenEnv] ?? "";
    if (token === "")
      throw new TokenwardenError("invalid_input", `environment variable ${flags.tokenEnv} is empty or unset`);
  } else if (arg === "-") {
    token = await readStdin();
  } else if (arg !== undefined) {
    token = arg;
  } else {
    throw new TokenwardenError(
      "invalid_input",
      "no token: pass it as an argument, as - (stdin), or with --token-env VAR",
    );
  }
  token = token.trim();
  if (token === "") throw new TokenwardenError("invalid_input", "the token is empty");
  const foreign = foreignCharacter(token);
  if (foreign !== null) {
    throw new TokenwardenError(
      "invalid_input",
      `the token holds a character a Slack token cannot: ${foreign}; copy it again as plain text`,
    );
  }
  return token;
}

export function registerDiagnoseCommand(program: Command): void {
  const diagnose = program
    .command("diagnose")
    .description("explain why a Slack token, connection or app stopped working, and what to do")
    .addHelpText(
      "after",
      `
Exit codes: 0 healthy (or nothing checked), 1 a problem was found, 2 bad usage.
--json prints { verdict, refreshable, error, token: { kind, rotating }, causes: [{ code, likelihood, explanation }], fix: [] }.

Example:
  $ tokenwarden diagnose token --token-env SLACK_BOT_TOKEN`,
    );

  withStoreOption(
    withSlackOptions(
      diagnose
        .command("token")
        .description("recognise a token from its prefix, ask Slack (auth.test) and explain the answer")
        .argument(
          "[token]",
          "the token, or - to read it from stdin (prefer --token-env: shell history keeps arguments)",
        )
        .option("--token-env <VAR>", "read the token from this environment variable")
        .option(
          "--refresh",
          "spend a refresh token (needs --client-id/--client-secret) and print or save the new pair",
        )
        .option(
          "--spend-unknown",
          "with --refresh and a store: spend a refresh token no stored connection holds as current (it is yours to keep)",
        )
        .option(
          "--scope <scopes>",
          "comma-separated scopes the token must have, e.g. chat:write,channels:read",
        )
        .option("--json", "print the diagnosis as JSON"),
    ),
  )
    .addHelpText(
      "after",
      `
The token is never printed: output names it by a fingerprint (prefix, last 4 characters, SHA-256 prefix).
A refresh token (xoxe-…) is never spent unless --refresh is given; then, because spending it destroys it,
the new pair is printed on stdout (or saved, if the token belongs to a stored connection). One that
tokenwarden has marked dead is not sent to Slack. With a store configured, one that is not the current
refresh token of a stored connection (it may be one tokenwarden already spent) is spent only with
--spend-unknown.

Examples:
  $ tokenwarden diagnose token --token-env SLACK_BOT_TOKEN
  $ pbpaste | tokenwarden diagnose token - --json
  $ tokenwarden diagnose token --token-env SLACK_BOT_TOKEN --scope chat:write
  $ tokenwarden diagnose token --token-env SLACK_REFRESH_TOKEN --refresh --client-id "$SLACK_CLIENT_ID" --client-secret "$SLACK_CLIENT_SECRET"`,
    )
    .action(async (arg: string | undefined, flags: TokenFlags, cmd: Command) => {
      const token = await tokenFrom(arg, flags);
      const baseUrl = slackBaseUrl(flags);
      const creds = slackCredentials(flags);
      if (flags.refresh === true && creds === null) {
        throw new TokenwardenError(
          "invalid_input",
          "--refresh needs --client-id and --client-secret (or SLACK_CLIENT_ID / SLACK_CLIENT_SECRET)",
        );
      }
      if (flags.spendUnknown === true && flags.refresh !== true) {
        throw new TokenwardenError("invalid_input", "--spend-unknown only applies with --refresh");
      }
      const spend = flags.refresh === true && token.startsWith("xoxe-");
      const cli = spend && storeConfigured(flags) ? await openCliWarden(flags, isVerbose(cmd)) : null;
      try {
        const result = await diagnoseToken({
          token,
          baseUrl,
          ...(flags.scope === undefined
            ? {}
            : {
                requiredScopes: flags.scope
                  .split(",")
                  .map((s) => s.trim())
                  .filter((s) => s !== ""),
              }),
          refreshWith: spend ? creds : null,
          stored:
            cli === null ? null : { store: cli.store, warden: cli.warden, reconnectUrl: cli.reconnectUrl },
          spendUnknown: flags.spendUnknown === true,
        });
        const nt = result.newTokens;
        if (nt !== null) {
          process.stderr.write(
            "tokenwarden: WARNING: the refresh token was spent. The new pair below is the only copy: store BOTH now.\n",
          );
        }
        if (flags.json === true) {
          printJson(
            nt === null
              ? diagnosisJson(result.diagnosis)
              : {
                  ...diagnosisJson(result.diagnosis),
                  new_tokens: {
                    access_token: nt.accessToken.reveal(),
                    refresh_token: nt.refreshToken?.reveal() ?? null,
                    expires_at: nt.expiresAtMs === null ? null : new Date(nt.expiresAtMs).toISOString(),
                  },
                },
          );
        } else {
          if (nt !== null) {
            // The one place a token is printed: spending it otherwise destroys the connection.
            process.stdout.write(
              [
                "================ NEW TOKENS — store both now ================",
                `access token:  ${nt.accessToken.reveal()}`,
                `refresh token: ${nt.refreshToken?.reveal() ?? "(none returned: keep the old one)"}`,
                `expires at:    ${nt.expiresAtMs === null ? "never" : new Date(nt.expiresAtMs).toISOString()}`,
                "=============================================================",
                "",
              ].join("\n"),
            );
          }
          process.stdout.write(
            renderDiagnosis(result.diagnosis, {
              subject: `token ${fingerprint(token)}`,
              shapeLine: `a ${result.shape.label}${result.shape.prefix === null ? " (no known Slack prefix)" : ""}; ${result.notSent === null ? `checked against ${baseUrl}` : `not sent to Slack: ${result.notSent}`}`,
            }),
          );
        }
        process.exitCode = exitFor(result.diagnosis);
      } finally {
        await cli?.close();
      }
    });

  withSlackOptions(
    diagnose
      .command("app")
      .description("check the app's client id and secret and whether token rotation is on (no side effect)")
      .option("--json", "print the diagnosis as JSON"),
  )
    .addHelpText(
      "after",
      `
Two probes with deliberately invalid tokens, so nothing changes at Slack:
  oauth.v2.access (refresh grant) → invalid_client_id / bad_client_secret / credentials fine
  oauth.v2.exchange               → token_rotation_not_enabled / rotation on

Example:
  $ tokenwarden diagnose app --client-id "$SLACK_CLIENT_ID" --client-secret "$SLACK_CLIENT_SECRET"`,
    )
    .action(async (flags: SlackFlags & { json?: boolean }) => {
      const creds = slackCredentials(flags);
      if (creds === null) {
        throw new TokenwardenError(
          "invalid_input",
          "diagnose app needs --client-id and --client-secret (or SLACK_CLIENT_ID / SLACK_CLIENT_SECRET)",
        );
      }
      const baseUrl = slackBaseUrl(flags);
      const d = await diagnoseApp({ ...creds, baseUrl });
      if (flags.json === true) printJson(diagnosisJson(d));
      else
        process.stdout.write(
          renderDiagnosis(d, {
            subject: `Slack app ${creds.clientId}`,
            shapeLine: `checked against ${baseUrl}`,
          }),
        );
      process.exitCode = exitFor(d);
    });

  withStoreOption(
    withSlackOptions(
      diagnose
        .command("connection")
        .description("explain a stored connection from its status and event log (no network call)")
        .argument("<id>", "connection id")
        .option("--json", "print the diagnosis as JSON"),
    ),
  )
    .addHelpText(
      "after",
      `
Example:
  $ tokenwarden diagnose connection T0123ABCD`,
    )
    .action(async (id: string, flags: StoreFlags & SlackFlags & { json?: boolean }, cmd: Command) => {
      const baseUrl = slackBaseUrl(flags);
      const cli = await openCliWarden(flags, isVerbose(cmd));
      try {
        const r = await diagnoseConnection({
          id,
          store: cli.store,
          warden: cli.warden,
          baseUrl,
          reconnectUrl: cli.reconnectUrl,
          // Stored instants are dated on the warden's clock (the database's, on PostgreSQL).
          nowMs: cli.warden.clock.now(),
        });
        if (flags.json === true) printJson(diagnosisJson(r.diagnosis));
        else
          process.stdout.write(
            renderDiagnosis(r.diagnosis, {
              subject: `connection ${id}${r.credential === null ? "" : ` (${r.credential} credential)`}`,
              timeline: r.timeline,
            }),
          );
        process.exitCode = exitFor(r.diagnosis);
      } finally {
        await cli.close();
      }
    });
}
