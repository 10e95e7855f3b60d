import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { TokenwardenError } from "../../core/errors.js";
import { type Connection, type CredentialKind, STATUSES, type Status } from "../../core/types.js";
import { describeEvent, iso } from "../../diagnose/explain-connection.js";
import { connectionView, eventView } from "../../server/wire.js";
import { EXIT } from "../exit.js";
import { parseImportFile, SLACK_KINDS } from "../import-file.js";
import { mapBounded } from "../map-bounded.js";
import {
  type CliWarden,
  isVerbose,
  openCliWarden,
  type SlackFlags,
  type StoreFlags,
  slackCredentials,
  withSlackOptions,
  withStoreOption,
} from "../open-warden.js";
import { integerOption } from "../option-parsers.js";
import { formatTable, printJson, relativeTime } from "../output.js";
import { startProgress } from "../progress-bar.js";
import { readPathOrStdin } from "../read-input.js";

type Flags = StoreFlags & SlackFlags & { json?: boolean };

function kindOption(value: string): CredentialKind {
  if (value !== "bot" && value !== "user" && value !== "default") {
    throw new InvalidArgumentError("--kind must be bot, user or default");
  }
  return value;
}

function statusOption(value: string): Status {
  if (!(STATUSES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`--status must be one of ${STATUSES.join(", ")}`);
  }
  return value as Status;
}

function credentialsCell(c: Connection, nowMs: number): string {
  return c.credentials
    .map(
      (k) =>
        `${k.kind}${k.expiresAtMs === null ? "" : ` ${relativeTime(k.expiresAtMs, nowMs)}`}${k.hasRefreshToken ? "" : " (no refresh)"}`,
    )
    .join(", ");
}

/**
 * A connection as `--json` prints it: the HTTP API's view (`GET /v1/connections/:id`), so a script
 * reads one shape whichever surface it asked. Never a token: the engine's summaries have none.
 */
function connectionJson(cli: CliWarden, c: Connection) {
  return connectionView(c, cli.reconnectUrl);
}

async function withWarden<T>(flags: Flags, cmd: Command, fn: (cli: CliWarden) => Promise<T>): Promise<T> {
  const cli = await openCliWarden(flags, isVerbose(cmd));
  try {
    return await fn(cli);
  } finally {
    await cli.close();
  }
}

/**
 * One connection's failure as a row: the code (or the dead reason) to act on and the message to
 * read. The message is safe to print: TokenwardenError messages never hold a secret (DESIGN.md
 * invariant 5; they name connections, kinds, reasons and providers), and the one-line error every
 * command prints already shows any other error's message.
 */
function failureRow(error: unknown): { error: string; message: string | null } {
  const code = error instanceof TokenwardenError ? error.code : "error";
  const reason = (error as { reason?: unknown } | null)?.reason;
  return {
    error: typeof reason === "string" ? reason : code,
    message: error instanceof Error ? error.message : null,
  };
}

const failedCell = (r: { error: string | null; message: string | null }): string =>
  `failed: ${r.error ?? "unknown"}${r.message === null ? "" : ` (${r.message})`}`;

function requireSlack(cli: CliWarden, what: string): void {
  if (!cli.slackConfigured) {
    throw new TokenwardenError(
      "config_invalid",
      `${what} needs the Slack app: set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (or --client-id / --client-secret)`,
    );
  }
}

/** The connections matching `filter`, at most `max`; `more` when the store holds others past them. */
async function allConnections(
  cli: CliWarden,
  filter: { provider?: string; status?: Status },
  max = Number.MAX_SAFE_INTEGER,
): Promise<{ items: Connection[]; more: boolean }> {
  const items: Connection[] = [];
  let cursor: string | null = null;
  do {
    const page = await cli.warden.connections.list({
      ...filter,
      limit: Math.min(500, max - items.length),
      ...(cursor === null ? {} : { cursor }),
    });
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null && items.length < max);
  // A page that ends exactly at the last row gives no cursor (the store contract), so one means more.
  return { items, more: cursor !== null };
}

/**
 * The ids an --all or <id> command works on; exactly one of the two. With a kind, --all means the
 * connections holding a live credential of that kind: a bot-only install has no user token to
 * refresh, which is not a failure, and a dead bot does not stop its user token being refreshed.
 */
async function targets(
  cli: CliWarden,
  id: string | undefined,
  all: boolean | undefined,
  kind?: CredentialKind,
): Promise<string[]> {
  if ((id === undefined) === (all !== true)) {
    throw new TokenwardenError("invalid_input", "give a connection id or --all (not both)");
  }
  if (id !== undefined) return [id];
  const live = (c: { status: Status }) => c.status !== "needs_reauth";
  return (await allConnections(cli, {})).items
    .filter((c) => (kind === undefined ? live(c) : c.credentials.some((k) => k.kind === kind && live(k))))
    .map((c) => c.id);
}

/**
 * `--concurrency`: how many connections an --all run works on at once. Refreshes all go to one token
 * endpoint, which Slack limits per app (a 429 pauses every refresh of the run), so the default stays
 * low; checks use each workspace's own token and limit.
 */
function concurrencyOption(what: string): [string, string, (value: string) => number, number] {
  return [
    "--concurrency <n>",
    `how many ${what} run at once under --all (1 to 32)`,
    integerOption("--concurrency", 1, 32),
    4,
  ];
}

/**
 * The rows of an --all (or one-id) run: `work` on `concurrency` connections at once, with a progress
 * bar, in the ids' order. One connection's failure (gone, its provider not configured here, a key
 * missing) is its row, not the end of the run: the others go on.
 */
async function rowsPerConnection<Row>(
  ids: string[],
  concurrency: number,
  label: string,
  work: (id: string) => Promise<Row[]>,
  failed: (id: string, error: unknown) => Row,
): Promise<Row[]> {
  const bar = startProgress(label, ids.length);
  const perConnection = await mapBounded(ids, concurrency, async (id) => {
    let rows: Row[];
    try {
      rows = await work(id);
    } catch (error) {
      rows = [failed(id, error)];
    }
    bar.tick();
    return rows;
  });
  bar.done();
  return perConnection.flat();
}

export function registerConnectionsCommand(program: Command): void {
  const connections = program
    .command("connections")
    .description("list, inspect, import, refresh, check and delete stored connections")
    .addHelpText("after", "\nExample:\n  $ tokenwarden connections list --status needs_reauth");

  withStoreOption(
    connections
      .command("list")
      .description("list connections (never a token)")
      .option("--provider <name>", "only this provider")
      .option("--status <status>", `only this status (${STATUSES.join(", ")})`, statusOption)
      .option("--limit <n>", "at most this many", integerOption("--limit", 1))
      .option("--json", "print JSON"),
  )
    .addHelpText("after", "\nExample:\n  $ tokenwarden connections list --status needs_reauth --json")
    .action(async (flags: Flags & { provider?: string; status?: Status; limit?: number }, cmd: Command) => {
      await withWarden(flags, cmd, async (cli) => {
        const { items, more } = await allConnections(
          cli,
          {
            ...(flags.provider === undefined ? {} : { provider: flags.provider }),
            ...(flags.status === undefined ? {} : { status: flags.status }),
          },
          flags.limit,
        );
        // On stderr, so a script reading the table (or the JSON) reads rows only.
        if (more)
          process.stderr.write(
            `the first ${items.length} shown; more match (raise --limit, or leave it out)\n`,
          );
        if (flags.json === true) {
          printJson(items.map((c) => connectionJson(cli, c)));
          return;
        }
        if (items.length === 0) {
          process.stdout.write("no connections\n");
          return;
        }
        const now = cli.warden.clock.now(); // stored instants are dated on it
        process.stdout.write(
          formatTable(
            ["ID", "PROVIDER", "STATUS", "REASON", "CREDENTIALS (access token expiry)", "UPDATED"],
            items.map((c) => [
              c.id,
              c.provider,
              c.status,
              c.reason ?? "-",
              credentialsCell(c, now),
              relativeTime(c.updatedAtMs, now),
            ]),
          ),
        );
      });
    });

  withStoreOption(
    connections
      .command("show")
      .description("one connection: status, credentials, recent events (never a token)")
      .argument("<id>", "connection id")
      .option("--events <n>", "how many recent events to show", integerOption("--events", 1), 20)
      .option("--json", "print JSON"),
  )
    .addHelpText("after", "\nExample:\n  $ tokenwarden connections show T0123ABCD --events 50")
    .action(async (id: string, flags: Flags & { events: number }, cmd: Command) => {
      await withWarden(flags, cmd, async (cli) => {
        const c = await cli.warden.connections.get(id);
        const events = await cli.warden.connections.events(id, { limit: flags.events });
        if (flags.json === true) {
          printJson({ ...connectionJson(cli, c), events: events.map(eventView) });
          return;
        }
        const now = cli.warden.clock.now(); // stored instants are dated on it
        const out = process.stdout;
        out.write(`${c.id}  ${c.provider}  ${c.status}${c.reason ? ` (${c.reason})` : ""}\n`);
        if (Object.keys(c.metadata).length > 0) out.write(`metadata: ${JSON.stringify(c.metadata)}\n`);
        out.write("\n");
        out.write(
          formatTable(
            ["KIND", "STATUS", "REASON", "EXPIRES", "REFRESH TOKEN", "FAILURES", "SCOPES"],
            c.credentials.map((k) => [
              k.kind,
              k.status,
              k.reason ?? "-",
              k.expiresAtMs === null
                ? "never"
                : `${iso(k.expiresAtMs)} (${relativeTime(k.expiresAtMs, now)})`,
              k.hasRefreshToken ? "yes" : "no",
              String(k.failureCount),
              k.scopes.join(",") || "-",
            ]),
          ),
        );
        out.write("\nRecent events (newest first):\n");
        out.write(
          formatTable(
            ["AT", "KIND", "EVENT"],
            events.map((e) => [iso(e.atMs), e.kind ?? "-", describeEvent(e)]),
          ),
        );
      });
    });

  withStoreOption(
    withSlackOptions(
      connections
        .command("import")
        .description("import tokens from our JSON format or an @slack/oauth installation export")
        .argument("<file>", "a JSON file, or - for stdin")
        .option("--dry-run", "validate only; import nothing")
        .option("--json", "print JSON"),
    ),
  )
    .addHelpText(
      "after",
      `
Accepted: one object or an array of
  - our format: { "id"?, "provider": "slack", "credentials": { "bot": { "accessToken", "refreshToken"?, "expiresAt"? (epoch ms) | "expiresIn"? (s), "scopes"? } , "user"?: … }, "metadata"? }
  - the same in snake_case, as the HTTP API takes it: access_token, refresh_token, expires_at (epoch SECONDS or ISO 8601) | expires_in
  - an @slack/oauth Installation: { team: { id, name }, enterprise?, isEnterpriseInstall?, bot: { token, refreshToken, expiresAt (epoch SECONDS), scopes, id, userId }, user: { token, … , id } }
    stored as the install flow stores one: metadata team_id, team_name, enterprise_id, enterprise_name,
    is_enterprise_install, app_id, authed_user_id, bot_user_id
Everything is validated first, the provider included (it must be configured: SLACK_CLIENT_ID and
SLACK_CLIENT_SECRET for slack), --dry-run too: one bad entry imports nothing (exit 2, the field named,
no value echoed).
An existing id is replaced (a reconnect).

Example:
  $ tokenwarden connections import installations.json
  $ cat export.json | tokenwarden connections import - --dry-run`,
    )
    .action(async (file: string, flags: Flags & { dryRun?: boolean }, cmd: Command) => {
      // Every entry is checked against what this run can write (provider configured, kinds it
      // holds, ids) before the first write, so all-or-nothing needs no transaction over the loop:
      // what can still fail below is the store itself, and a rerun replaces what was written.
      const inputs = parseImportFile(await readPathOrStdin(file), {
        targets: slackCredentials(flags) === null ? {} : { slack: SLACK_KINDS },
        onWarning: (message) => process.stderr.write(`tokenwarden: warning: ${message}\n`),
      });
      if (flags.dryRun === true) {
        if (flags.json === true) printJson({ valid: inputs.length, imported: 0 });
        else process.stdout.write(`${inputs.length} connection(s) valid; nothing imported (--dry-run)\n`);
        return;
      }
      await withWarden(flags, cmd, async (cli) => {
        const bar = startProgress("importing", inputs.length);
        const imported: Connection[] = [];
        for (const input of inputs) {
          imported.push(await cli.warden.connections.import(input));
          bar.tick();
        }
        bar.done();
        if (flags.json === true) printJson(imported.map((c) => connectionJson(cli, c)));
        else {
          const now = cli.warden.clock.now(); // stored instants are dated on it
          process.stdout.write(
            formatTable(
              ["ID", "PROVIDER", "STATUS", "CREDENTIALS"],
              imported.map((c) => [c.id, c.provider, c.status, credentialsCell(c, now)]),
            ),
          );
          process.stdout.write(`imported ${imported.length} connection(s)\n`);
        }
      });
    });

  withStoreOption(
    withSlackOptions(
      connections
        .command("refresh")
        .description(
          "refresh now (ignoring backoff); the rotated refresh token is stored before anything else",
        )
        .argument("[id]", "connection id")
        .option(
          "--all",
          "every connection that is not needs_reauth (with --kind: that holds a live one of that kind)",
        )
        .option("--kind <kind>", "only this credential (bot, user, default)", kindOption)
        .option(...concurrencyOption("refreshes"))
        .option("--json", "print JSON"),
    ),
  )
    .addHelpText(
      "after",
      "\nExit code 1 when any refresh failed.\n\nExample:\n  $ tokenwarden connections refresh T0123ABCD\n  $ tokenwarden connections refresh --all --json",
    )
    .action(
      async (
        id: string | undefined,
        flags: Flags & { all?: boolean; kind?: CredentialKind; concurrency: number },
        cmd: Command,
      ) => {
        await withWarden(flags, cmd, async (cli) => {
          const ids = await targets(cli, id, flags.all, flags.kind);
          requireSlack(cli, "refreshing");
          type Row = {
            id: string;
            kind: string;
            refreshed: boolean;
            error: string | null;
            message: string | null;
            expires_at: string | null;
          };
          const rows = await rowsPerConnection<Row>(
            ids,
            flags.concurrency,
            "refreshing",
            async (cid) => {
              const results = await cli.warden.connections.refresh(
                cid,
                flags.kind === undefined ? {} : { kind: flags.kind },
              );
              if (results.length === 0)
                return [
                  {
                    id: cid,
                    kind: "-",
                    refreshed: false,
                    error: "no_refresh_token",
                    message: null,
                    expires_at: null,
                  },
                ];
              return results.map((r) => ({
                id: cid,
                kind: r.kind,
                refreshed: r.refreshed,
                error: r.error,
                message: null,
                expires_at: r.expiresAt?.toISOString() ?? null,
              }));
            },
            (cid, error) => ({
              id: cid,
              kind: flags.kind ?? "-",
              refreshed: false,
              ...failureRow(error),
              expires_at: null,
            }),
          );
          if (flags.json === true) printJson(rows);
          else
            process.stdout.write(
              formatTable(
                ["ID", "KIND", "RESULT", "EXPIRES"],
                rows.map((r) => [
                  r.id,
                  r.kind,
                  r.refreshed ? "refreshed" : failedCell(r),
                  r.expires_at ?? "-",
                ]),
              ),
            );
          // Under --all a credential with nothing to refresh (a non-rotating token) is reported, not
          // failed: a workspace holding one would otherwise make every scheduled run exit 1.
          const failed = (r: (typeof rows)[number]) =>
            !r.refreshed && !(flags.all === true && r.error === "no_refresh_token");
          process.exitCode = rows.some(failed) ? EXIT.failed : EXIT.ok;
        });
      },
    );

  withStoreOption(
    withSlackOptions(
      connections
        .command("check")
        .description("health check now (Slack: auth.test) and act on the answer")
        .argument("[id]", "connection id")
        .option("--all", "every connection that is not needs_reauth")
        .option(...concurrencyOption("checks"))
        .option("--json", "print JSON"),
    ),
  )
    .addHelpText(
      "after",
      "\nExit code 1 when any check failed.\n\nExample:\n  $ tokenwarden connections check --all",
    )
    .action(
      async (id: string | undefined, flags: Flags & { all?: boolean; concurrency: number }, cmd: Command) => {
        await withWarden(flags, cmd, async (cli) => {
          const ids = await targets(cli, id, flags.all);
          requireSlack(cli, "checking");
          type Row = {
            id: string;
            kind: string;
            ok: boolean;
            error: string | null;
            message: string | null;
            status: string | null;
            reason: string | null;
          };
          const rows = await rowsPerConnection<Row>(
            ids,
            flags.concurrency,
            "checking",
            async (cid) =>
              (await cli.warden.connections.check(cid)).credentials.map((c) => ({
                id: cid,
                kind: c.kind,
                ok: c.ok,
                error: c.error,
                message: null,
                status: c.status,
                reason: c.reason,
              })),
            (cid, error) => ({
              id: cid,
              kind: "-",
              ok: false,
              ...failureRow(error),
              status: null,
              reason: null,
            }),
          );
          if (flags.json === true) printJson(rows);
          else
            process.stdout.write(
              formatTable(
                ["ID", "KIND", "CHECK", "STATUS", "REASON"],
                rows.map((r) => [
                  r.id,
                  r.kind,
                  r.ok ? "ok" : failedCell(r),
                  r.status ?? "-",
                  r.reason ?? "-",
                ]),
              ),
            );
          process.exitCode = rows.every((r) => r.ok) ? EXIT.ok : EXIT.failed;
        });
      },
    );

  withStoreOption(
    withSlackOptions(
      connections
        .command("delete")
        .description(
          "forget a connection, or with --kind one of its credentials (sign a user out, keep the bot), optionally revoking at Slack first",
        )
        .argument("<id>", "connection id")
        .option(
          "--kind <kind>",
          "only this credential: bot, user or default (the connection keeps the others; its last one is refused)",
          kindOption,
        )
        .option("--revoke", "revoke the tokens at the provider first (best effort)")
        .option("--yes", "confirm: deleting cannot be undone")
        .option("--json", "print JSON"),
    ),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  $ tokenwarden connections delete T0123ABCD --revoke --yes\n  $ tokenwarden connections delete T0123ABCD --kind user --revoke --yes   # sign the user out, keep the bot",
    )
    .action(
      async (
        id: string,
        flags: Flags & { revoke?: boolean; yes?: boolean; kind?: CredentialKind },
        cmd: Command,
      ) => {
        const what = flags.kind === undefined ? id : `the ${flags.kind} credential of ${id}`;
        if (flags.yes !== true)
          throw new TokenwardenError("invalid_input", `deleting ${what} cannot be undone: add --yes`);
        await withWarden(flags, cmd, async (cli) => {
          if (flags.revoke === true) requireSlack(cli, "--revoke");
          const revoke = flags.revoke === true;
          let revoked: Array<{ kind: CredentialKind; ok: boolean; error?: string }>;
          if (flags.kind === undefined) {
            const r = await cli.warden.connections.delete(id, { revoke });
            revoked = r.revoked;
            if (flags.json === true) printJson({ id, ...r });
            else process.stdout.write(`deleted ${id}\n`);
          } else {
            const r = await cli.warden.connections.deleteCredential(id, flags.kind, { revoke });
            revoked = r.revoked;
            // As DELETE /v1/connections/:id/credentials/:kind answers, with the id and kind beside it.
            if (flags.json === true)
              printJson({
                id,
                kind: flags.kind,
                deleted: r.deleted,
                revoked: r.revoked,
                connection: connectionJson(cli, r.connection),
              });
            else
              process.stdout.write(
                `deleted the ${flags.kind} credential of ${id} (the connection is ${r.connection.status})\n`,
              );
          }
          if (flags.json !== true)
            for (const v of revoked)
              process.stdout.write(
                `  ${v.kind}: ${v.ok ? "revoked" : `revoke failed (${v.error ?? "unknown"})`}\n`,
              );
          process.exitCode = revoked.every((v) => v.ok) ? EXIT.ok : EXIT.failed;
        });
      },
    );
}
