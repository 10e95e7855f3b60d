// The README promises every command a --help with an example: each command's help, read in process.
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registerConnectionsCommand } from "../../src/cli/commands/connections.js";
import { registerDemoCommand } from "../../src/cli/commands/demo.js";
import { registerDiagnoseCommand } from "../../src/cli/commands/diagnose.js";
import { registerEmulatorCommand } from "../../src/cli/commands/emulator.js";
import { registerKeysCommand } from "../../src/cli/commands/keys.js";
import { registerMigrateCommand } from "../../src/cli/commands/migrate.js";
import { registerServeCommand } from "../../src/cli/commands/serve.js";

function everyCommand(): Array<[string, Command]> {
  const program = new Command().name("tokenwarden");
  for (const register of [
    registerDiagnoseCommand,
    registerConnectionsCommand,
    registerKeysCommand,
    registerMigrateCommand,
    registerServeCommand,
    registerDemoCommand,
    registerEmulatorCommand,
  ]) {
    register(program);
  }
  const found: Array<[string, Command]> = [];
  const walk = (cmd: Command, path: string) => {
    for (const sub of cmd.commands) {
      const name = `${path} ${sub.name()}`.trim();
      found.push([name, sub]);
      walk(sub, name);
    }
  };
  walk(program, "");
  return found;
}

/** What `--help` prints, the text added after it included. */
function helpOf(cmd: Command): string {
  let out = "";
  cmd.configureOutput({
    writeOut: (s) => {
      out += s;
    },
  });
  cmd.outputHelp();
  return out;
}

describe("every command's --help", () => {
  const commands = everyCommand();

  it("covers the commands of the contract", () => {
    const names = commands.map(([name]) => name);
    for (const c of [
      "serve",
      "demo",
      "emulator slack",
      "diagnose token",
      "connections import",
      "keys rotate",
    ])
      expect(names).toContain(c);
  });

  it.each(commands.map(([name, cmd]) => [name, cmd] as const))(
    "tokenwarden %s shows an example",
    (name, cmd) => {
      expect(helpOf(cmd)).toMatch(new RegExp(`Examples?:\\n\\s+\\$ (\\S+=\\S+ )*tokenwarden ${name}`));
    },
  );
});

describe("connections delete --help", () => {
  it("offers --kind, to sign one credential out and keep the rest, with an example", () => {
    const [, cmd] = everyCommand().find(([name]) => name === "connections delete") ?? [];
    if (cmd === undefined) throw new Error("no connections delete");
    const help = helpOf(cmd);
    expect(help).toMatch(/--kind <kind>\s+only this credential: bot, user or default/);
    expect(help).toContain("$ tokenwarden connections delete T0123ABCD --kind user --revoke --yes");
  });
});
