import type { Command } from "commander";
import { describeDatabaseUrl } from "../../config.js";
import { openKeylessStore } from "../../engine/open-keyed-store.js";
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
      // Migrations touch no sealed value, so the store opens without needing the real key.
      const store = await openKeylessStore(url);
      let applied: string[];
      let newer: string[];
      try {
        applied = await store.migrate();
        newer = (await store.newerMigrations?.()) ?? [];
      } finally {
        await store.close();
      }
      const display = describeDatabaseUrl(url);
      if (newer.length > 0) {
        // Not "up to date": a newer release migrated this database, and this one is older.
        process.stderr.write(
          `tokenwarden: note: the database has migrations this release does not know (${newer.join(", ")}): a newer release applied them; run that release or a newer one\n`,
        );
      }
      if (flags.json === true) printJson({ database: display, migrated: true, applied, newer });
      else if (newer.length > 0) process.stdout.write(`schema ahead of this release: ${display}\n`);
      else if (applied.length === 0) process.stdout.write(`schema up to date: ${display}\n`);
      else process.stdout.write(`applied ${applied.join(", ")}; schema up to date: ${display}\n`);
    });
}
