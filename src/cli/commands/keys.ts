import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { generateKey, KEY_ID } from "../../crypto/key-ring.js";
import { isVerbose, openCliWarden, type StoreFlags, withStoreOption } from "../open-warden.js";
import { integerOption } from "../option-parsers.js";
import { printJson } from "../output.js";
import { startProgress } from "../progress-bar.js";

export function registerKeysCommand(program: Command): void {
  const keys = program
    .command("keys")
    .description("encryption keys: generate one, re-encrypt everything under the first")
    .addHelpText("after", "\nExample:\n  $ tokenwarden keys generate --id k2026");

  keys
    .command("generate")
    .description("print a new random key (base64 of 32 bytes) for TOKENWARDEN_ENCRYPTION_KEY")
    .option("--id <id>", "print it as id:key, ready to put first in a key ring", (v: string) => {
      if (!KEY_ID.test(v)) throw new InvalidArgumentError("--id must be 1-32 of A-Z a-z 0-9 _ -");
      return v;
    })
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      `
Rotation, step by step (the first key encrypts, all decrypt):
  1. tokenwarden keys generate --id k2          (an id never used on this database)
  2. TOKENWARDEN_ENCRYPTION_KEY="OLD,k2:NEW"   on every instance: all can read k2 before any writes it
  3. TOKENWARDEN_ENCRYPTION_KEY="k2:NEW,OLD"   on every instance: new values are sealed under k2
  4. tokenwarden keys rotate                    (re-encrypts every token under k2; from now on
                                                an instance starting with OLD first is refused)
  5. TOKENWARDEN_ENCRYPTION_KEY="k2:NEW"        (the old key can go)
With a single instance, step 2 can be skipped.

Example:
  $ tokenwarden keys generate --id k2`,
    )
    .action((flags: { id?: string; json?: boolean }) => {
      const key = generateKey();
      const value = flags.id === undefined ? key : `${flags.id}:${key}`;
      if (flags.json === true) printJson({ id: flags.id ?? null, key, value });
      else {
        process.stdout.write(`${value}\n`);
        if (process.stderr.isTTY) {
          process.stderr.write(
            "Keep it in your secret manager as TOKENWARDEN_ENCRYPTION_KEY; to rotate, put it first: new:KEY,OLD\n",
          );
        }
      }
    });

  withStoreOption(
    keys
      .command("rotate")
      .description("re-encrypt every stored token under the first key of TOKENWARDEN_ENCRYPTION_KEY, online")
      .option("--batch-size <n>", "tokens per transaction", integerOption("--batch-size", 1, 10_000), 200)
      .option("--json", "print JSON"),
  )
    .addHelpText(
      "after",
      `
Safe while servers run: each batch is one transaction, and every reader holding the key ring decrypts both.

Example:
  $ TOKENWARDEN_ENCRYPTION_KEY="k2:NEW,k1:OLD" tokenwarden keys rotate`,
    )
    .action(async (flags: StoreFlags & { batchSize: number; json?: boolean }, cmd: Command) => {
      const cli = await openCliWarden(flags, isVerbose(cmd));
      try {
        const bar = startProgress("re-encrypted", null);
        let last = 0;
        const total = await cli.warden.rotateKeys({
          batchSize: flags.batchSize,
          onProgress: (done) => {
            bar.tick(done - last);
            last = done;
          },
        });
        bar.done();
        if (flags.json === true) printJson({ resealed: total });
        else
          process.stdout.write(`re-encrypted the tokens of ${total} credential(s) under the current key\n`);
      } finally {
        await cli.close();
      }
    });
}
