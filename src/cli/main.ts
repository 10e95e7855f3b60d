#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerConnectionsCommand } from "./commands/connections.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerDiagnoseCommand } from "./commands/diagnose.js";
import { registerEmulatorCommand } from "./commands/emulator.js";
import { registerKeysCommand } from "./commands/keys.js";
import { registerMigrateCommand } from "./commands/migrate.js";
import { registerServeCommand } from "./commands/serve.js";
import { reportFailure } from "./exit.js";
import { dropOutputToClosedPipe } from "./output.js";

dropOutputToClosedPipe(process.stdout);
dropOutputToClosedPipe(process.stderr);

const program = new Command()
  .name("tokenwarden")
  .description("Keeps OAuth connections alive: encrypted tokens, single-flight refresh, re-auth signals.")
  .option("--verbose", "print stack traces on errors")
  // Commander's usage errors ("error: unknown option '--x'", a suggestion on a second line) become
  // the one `tokenwarden: …` line every other error is; subcommands inherit this and exitOverride.
  .configureOutput({
    outputError: (str, write) =>
      write(
        `tokenwarden: ${str
          .trim()
          .replace(/^error:\s*/, "")
          .replace(/\s*\n\s*/g, " ")} (run with --help for usage)\n`,
      ),
  })
  .exitOverride()
  .addHelpText(
    "after",
    `
Exit codes: 0 ok, 1 a problem was found or an operation failed, 2 bad usage or configuration.
Configuration comes from TOKENWARDEN_DATABASE_URL, TOKENWARDEN_ENCRYPTION_KEY, SLACK_CLIENT_ID,
SLACK_CLIENT_SECRET and SLACK_BASE_URL; flags override them. No command prints a full token.

Example:
  $ tokenwarden diagnose token --token-env SLACK_BOT_TOKEN`,
  );

registerDiagnoseCommand(program);
registerConnectionsCommand(program);
registerKeysCommand(program);
registerMigrateCommand(program);
registerServeCommand(program);
registerDemoCommand(program);
registerEmulatorCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version exit through here with code 0; usage errors with 1, which we report as 2.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    process.exitCode = reportFailure(error, program.opts<{ verbose?: boolean }>().verbose === true);
  }
}
