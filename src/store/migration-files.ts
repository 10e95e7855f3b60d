import { readdirSync, readFileSync } from "node:fs";

export interface Migration {
  version: number;
  name: string;
  /** The file's name without `.sql` (`0001_init`): how a person refers to it. */
  file: string;
  sql: string;
}

/**
 * The numbered, forward-only SQL files of one dialect. Read relative to this
 * module, so the same code finds them in `src/` (vitest, tsx) and in `dist/`
 * (the build copies them; scripts/copy-assets.mjs).
 */
export function loadMigrations(dialect: "sqlite" | "postgres"): Migration[] {
  const dir = new URL(`./migrations/${dialect}/`, import.meta.url);
  const migrations = readdirSync(dir)
    .flatMap((file) => {
      const match = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
      if (match === null) return [];
      return [
        {
          version: Number(match[1]),
          name: match[2] ?? file,
          file: file.slice(0, -".sql".length),
          sql: readFileSync(new URL(file, dir), "utf8"),
        },
      ];
    })
    .sort((a, b) => a.version - b.version);
  // Two files with one number (a stale build output, a merge) would apply one and then fail on the
  // other's schema_migrations row; name both instead.
  migrations.forEach((m, i) => {
    const previous = migrations[i - 1];
    if (previous?.version === m.version)
      throw new Error(`two ${dialect} migrations are numbered ${m.version}: ${previous.name}, ${m.name}`);
  });
  return migrations;
}

/**
 * The rows of schema_migrations that are not among `known`, as `0011_name`, oldest first: what a newer
 * release applied to a database this one now opens.
 */
export function newerThan(
  known: readonly Migration[],
  recorded: ReadonlyArray<{ version: number; name: string }>,
): string[] {
  const versions = new Set(known.map((m) => m.version));
  return recorded
    .filter((r) => !versions.has(Number(r.version)))
    .sort((a, b) => Number(a.version) - Number(b.version))
    .map((r) => `${String(r.version).padStart(4, "0")}_${r.name}`);
}
