#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { registerEmulatorCommand } from "./commands/emulator.js";
import { reportFailure } from "./exit.js";

const program = new Command()
  .name("tokenwarden")
  .description("Keeps OAuth connections alive: encrypted tokens, single-flight refresh, re-auth signals.")
  .option("--verbose", "print stack traces on errors")
  .showHelpAfterError()
  .exitOverride();

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
