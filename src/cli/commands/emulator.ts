import type { Command } from "commander";

/** `tokenwarden emulator slack`: filled in by the emulator work. */
export function registerEmulatorCommand(program: Command): void {
  program.command("emulator").description("run a local provider emulator for tests");
}
