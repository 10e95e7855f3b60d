import type { Command } from "commander";
import { startServer } from "../../server/start-server.js";
import { portOption } from "../option-parsers.js";

/** Resolves on the first SIGINT / SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      resolve(signal);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

/** `tokenwarden serve`: the HTTP API, install flow, Slack events, proxy, webhooks and background refresher. */
export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run the server: HTTP API, OAuth install flow, Slack events, proxy, webhooks, refresher")
    .option("--port <port>", "port to listen on", portOption, 3003)
    .option("--host <host>", "interface to bind", "127.0.0.1")
    .option("--database <url>", "sqlite:PATH or postgres://… (overrides TOKENWARDEN_DATABASE_URL)")
    .addHelpText(
      "after",
      `
Configuration comes from the environment (see README "Server"): TOKENWARDEN_DATABASE_URL,
TOKENWARDEN_ENCRYPTION_KEY, TOKENWARDEN_API_KEY, TOKENWARDEN_WEBHOOK_URL, TOKENWARDEN_WEBHOOK_SECRET,
TOKENWARDEN_PUBLIC_URL, SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_SIGNING_SECRET, SLACK_BASE_URL.

Example:
  $ tokenwarden serve --port 3003
  $ curl -H "Authorization: Bearer $TOKENWARDEN_API_KEY" http://127.0.0.1:3003/v1/connections`,
    )
    .action(async (flags: { port: number; host: string; database?: string }) => {
      const server = await startServer({
        port: flags.port,
        host: flags.host,
        ...(flags.database === undefined ? {} : { database: flags.database }),
      });
      const out = process.stdout;
      out.write(`tokenwarden listening on ${server.url} (public URL ${server.publicUrl})\n`);
      if (server.generatedApiKey !== null) {
        out.write(
          `\n  API key (shown once; only its hash is stored): ${server.generatedApiKey}\n  export TOKENWARDEN_API_KEY=${server.generatedApiKey}\n\n`,
        );
      }
      if (!server.providers.includes("slack")) {
        // Not an error (a server may only serve stored tokens), but installs would fail with no word why.
        process.stderr.write(
          "tokenwarden: note: Slack is not configured (set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET): installs, refreshes and checks of Slack connections are off. `tokenwarden demo` runs one against the emulator.\n",
        );
      }
      if (server.providers.includes("slack") && !server.slackEvents) {
        // Every event would be refused with a 502 and an error log, and an uninstall go unseen until
        // the next health check or refresh: said once, here, where the setup is being looked at.
        process.stderr.write(
          "tokenwarden: note: SLACK_SIGNING_SECRET is not set: Slack events (app_uninstalled, tokens_revoked) are refused, so an uninstall is noticed only at the next health check or refresh.\n",
        );
      }
      const signal = await untilSignal();
      process.stderr.write(`tokenwarden: ${signal}: shutting down\n`);
      await server.close();
    });
}
