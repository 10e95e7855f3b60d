import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Command } from "commander";
import { startSlackEmulator } from "../../emulator/index.js";
import { type RunningServer, startServer } from "../../server/start-server.js";
import { integerOption, portOption } from "../option-parsers.js";
import { untilSignal } from "./serve.js";

/** Metadata naming a connection the demo imported: a later run may forget it, and nothing else. */
const DEMO_MARK = "tokenwarden_demo";

/**
 * Deletes the workspaces earlier demo runs imported. Each run has a new emulator, so their tokens
 * belong to an app that is gone: every refresh of them is refused (`client_id_mismatch`), logged
 * beside this run's output. Connections without the mark (the user's own, in a database passed with
 * --database) are left alone; nothing is revoked, as their emulator is gone.
 */
async function forgetEarlierRuns(server: RunningServer): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await server.warden.connections.list({
      provider: "slack",
      limit: 500,
      ...(cursor === undefined ? {} : { cursor }),
    });
    for (const c of page.items) {
      if (c.metadata[DEMO_MARK] === true) await server.warden.connections.delete(c.id);
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
}

/**
 * `tokenwarden demo`: the emulator and a server on a demo SQLite file, one demo
 * workspace installed with 60-second tokens, so a newcomer sees rotation live.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description(
      "run a server beside the Slack emulator with a demo workspace whose tokens rotate every minute",
    )
    .option("--port <port>", "server port", portOption, 3003)
    .option("--database <url>", "demo database", `sqlite:${join(".", "tokenwarden-demo.db")}`)
    .option(
      "--token-ttl <seconds>",
      "lifetime of the demo's access tokens",
      integerOption("--token-ttl", 1),
      60,
    )
    .addHelpText(
      "after",
      "\nExample:\n  $ tokenwarden demo --token-ttl 120\n  (or npm run demo in a clone; it prints the API key, a curl line, an uninstall line and a reconnect link)",
    )
    .action(async (flags: { port: number; database: string; tokenTtl: number }) => {
      const emu = await startSlackEmulator({ accessTtlSeconds: flags.tokenTtl, autoApprove: true });
      // Whatever fails after the emulator is up (the port is taken, the key is bad), everything
      // started is closed before the one-line error: a listening emulator would keep the process
      // alive, the error printed and nobody told why it does not exit.
      let server: RunningServer | null = null;
      try {
        const apiKey = `tw_demo_${randomBytes(18).toString("base64url")}`;
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          TOKENWARDEN_DATABASE_URL: flags.database,
          TOKENWARDEN_API_KEY: apiKey,
          SLACK_CLIENT_ID: emu.demoApp.clientId,
          SLACK_CLIENT_SECRET: emu.demoApp.clientSecret,
          SLACK_SIGNING_SECRET: emu.demoApp.signingSecret,
          SLACK_BASE_URL: emu.url,
        };
        delete env["TOKENWARDEN_PUBLIC_URL"];
        delete env["TOKENWARDEN_WEBHOOK_URL"];
        // The refresher starts once an earlier run's workspace is gone, so it never sends that one.
        server = await startServer({ env, port: flags.port, healthChecks: false, refresher: false });
        await forgetEarlierRuns(server);
        emu.control.setEventsUrl(emu.demoApp.clientId, `${server.publicUrl}/slack/events`);
        const install = emu.control.install({
          clientId: emu.demoApp.clientId,
          teamId: emu.demoTeam.teamId,
          botScopes: ["chat:write", "channels:read", "users:read"],
        });
        const id = emu.demoTeam.teamId;
        await server.warden.connections.import({
          id,
          provider: "slack",
          credentials: {
            bot: {
              accessToken: install.access_token ?? "",
              refreshToken: install.refresh_token ?? null,
              expiresIn: install.expires_in ?? flags.tokenTtl,
              scopes: install.scope ?? "",
              providerData: { bot_user_id: install.bot_user_id ?? null },
            },
          },
          metadata: {
            team_id: id,
            team_name: emu.demoTeam.name,
            bot_user_id: install.bot_user_id ?? null,
            [DEMO_MARK]: true,
          },
        });
        server.warden.startRefresher();
        // What the demo is for, printed as it happens: rotations, and an episode's start and end.
        const say = (line: string) => process.stdout.write(`  ${new Date().toISOString()} ${line}\n`);
        server.warden.on("refreshed", (e) => {
          say(
            `refreshed ${e.connectionId}/${e.kind}: new token valid until ${e.expiresAt?.toISOString() ?? "never"}`,
          );
        });
        server.warden.on("needs_reauth", (e) => {
          say(`needs_reauth ${e.connectionId} (${e.reason}): reconnect at ${e.reconnectUrl ?? "-"}`);
        });
        server.warden.on("recovered", (e) => {
          say(`recovered ${e.connectionId}`);
        });
        const out = process.stdout;
        out.write(`tokenwarden demo\n`);
        out.write(
          `  API:        ${server.publicUrl}/v1/connections   (OpenAPI: ${server.publicUrl}/openapi.json)\n`,
        );
        out.write(`  API key:    ${apiKey}\n`);
        out.write(`  emulator:   ${emu.url} (Slack), workspace ${id} with ${flags.tokenTtl}-second tokens\n`);
        out.write(
          `  try:        curl -s -H "Authorization: Bearer ${apiKey}" ${server.publicUrl}/v1/connections/${id}/token\n`,
        );
        out.write(
          `  uninstall:  curl -s -X POST ${emu.url}/_emulator/uninstall -d '{"clientId":"${emu.demoApp.clientId}","teamId":"${id}"}'\n`,
        );
        // Quoted: the signed link's `&sig=` would otherwise end the command in a shell, opening the
        // bare link in the background.
        out.write(`  reconnect:  open ${shellQuoted(server.reconnectUrl(id))}\n`);
        out.write(`Rotations, needs_reauth and recovered show below as they happen; Ctrl-C stops.\n`);
        await untilSignal();
      } finally {
        try {
          await server?.close();
        } finally {
          await emu.close();
        }
      }
    });
}

/** `value` as one POSIX shell word. */
function shellQuoted(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
