import type { Command } from "commander";
import { describeDatabaseUrl } from "../../config.js";
import { parseKeyRing } from "../../crypto/key-ring.js";
import { AesGcmSealer } from "../../crypto/seal.js";
import { openStore } from "../../store/open-store.js";
import { databaseUrl, type StoreFlags, withStoreOption } from "../open-warden.js";
import { printJson } from "../output.js";

export function registerMigrateCommand(program: Command): void {
  withStoreOption(
    program
      .command("migrate")
      .description("create or upgrade the database schema (safe to run from several processes at once)")
      .option("--json", "print JSON"),
  )
    .addHelpText(
      "after",
      `
Every command (and the server) also migrates on start; run this to do it ahead of a deploy.
No encryption key is needed: migrations never read or write a token.

Example:
  $ TOKENWARDEN_DATABASE_URL=postgres://app@db/tokenwarden tokenwarden migrate`,
    )
    .action(async (flags: StoreFlags & { json?: boolean }) => {
      const url = databaseUrl(flags);
      // Migrations touch no sealed value, so a throwaway key opens the store without needing the real one.
      const sealer = new AesGcmSealer(parseKeyRing(Buffer.alloc(32, 7).toString("base64")));
      const store = await openStore(url, sealer);
      let applied: string[];
      try {
        applied = await store.migrate();
      } finally {
        await store.close();
      }
      const display = describeDatabaseUrl(url);
      if (flags.json === true) printJson({ database: display, migrated: true, applied });
      else if (applied.length === 0) process.stdout.write(`schema up to date: ${display}\n`);
      else process.stdout.write(`applied ${applied.join(", ")}; schema up to date: ${display}\n`);
    });
}
