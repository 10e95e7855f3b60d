import type { Command } from "commander";
import { startSlackEmulator } from "../../emulator/index.js";
import { integerOption, portOption } from "../option-parsers.js";

interface SlackEmulatorFlags {
  port: number;
  host: string;
  accessTtl?: number;
  refreshGrace?: number;
  eventsUrl?: string;
  latencyMs?: number;
  autoApprove?: boolean;
}

/** `tokenwarden emulator slack`: an emulated Slack on loopback until SIGINT/SIGTERM. */
export function registerEmulatorCommand(program: Command): void {
  const emulator = program
    .command("emulator")
    .description("run a local provider emulator for tests")
    .addHelpText("after", "\nExample:\n  $ tokenwarden emulator slack --port 3999");
  emulator
    .command("slack")
    .description("emulate Slack's OAuth v2, token rotation, Web API auth layer and events (see README)")
    .option("--port <port>", "port to listen on (0 = any free port)", portOption, 3999)
    .option("--host <host>", "interface to bind", "127.0.0.1")
    .option(
      "--access-ttl <seconds>",
      "expires_in of rotating access tokens (Slack: 43200)",
      integerOption("--access-ttl", 0),
    )
    .option(
      "--refresh-grace <seconds>",
      "how long a used refresh token keeps working (default 120)",
      integerOption("--refresh-grace", 0),
    )
    .option("--events-url <url>", "where signed events (app_uninstalled, tokens_revoked) are POSTed")
    .option("--latency-ms <ms>", "delay added to every Web API call", integerOption("--latency-ms", 0))
    .option("--auto-approve", "skip the consent page: /oauth/v2/authorize redirects at once")
    .addHelpText(
      "after",
      `
Example:
  $ tokenwarden emulator slack --port 3999 --access-ttl 600 --events-url http://127.0.0.1:3000/slack/events
  then point your app at it: SLACK_BASE_URL=http://127.0.0.1:3999 (Web API at /api/, install at /oauth/v2/authorize)
  and drive it over HTTP: curl -X POST http://127.0.0.1:3999/_emulator/advance -d '{"seconds":43200}'`,
    )
    .action(async (flags: SlackEmulatorFlags) => {
      const emu = await startSlackEmulator({
        port: flags.port,
        host: flags.host,
        ...(flags.accessTtl === undefined ? {} : { accessTtlSeconds: flags.accessTtl }),
        ...(flags.refreshGrace === undefined ? {} : { refreshGraceSeconds: flags.refreshGrace }),
        ...(flags.eventsUrl === undefined ? {} : { eventsUrl: flags.eventsUrl }),
        ...(flags.latencyMs === undefined ? {} : { latencyMs: flags.latencyMs }),
        ...(flags.autoApprove === true ? { autoApprove: true } : {}),
      });
      // A reader that stops reading (`… | head -1`) has taken the URL it wanted: the emulator keeps
      // serving it until Ctrl-C or SIGTERM (main.ts drops output to the closed pipe).
      const out = process.stdout;
      out.write(`Slack emulator listening on ${emu.url}\n`);
      out.write(`  SLACK_BASE_URL=${emu.url}\n`);
      out.write(`  SLACK_CLIENT_ID=${emu.demoApp.clientId}\n`);
      out.write(`  SLACK_CLIENT_SECRET=${emu.demoApp.clientSecret}\n`);
      out.write(`  SLACK_SIGNING_SECRET=${emu.demoApp.signingSecret}\n`);
      out.write(
        `  demo app ${emu.demoApp.appId}, workspace ${emu.demoTeam.teamId}, user ${emu.demoTeam.userId}\n`,
      );
      out.write(`  control API: ${emu.url}/_emulator/* (see README); Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await emu.close();
    });
}
