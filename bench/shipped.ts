// `npm run bench` builds first, and the benches measure that build: what ships. Under tsx every
// closure created at run time also goes through esbuild's name-keeping helper, a cost (about a
// microsecond per refresh in a storm) that users never pay. BENCH_DIST points the benches at another
// build (a copy of dist/ inside the repository, where its imports resolve): two builds, same host.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const DIST = process.env["BENCH_DIST"] ?? join(import.meta.dirname, "..", "dist");

/** Imports a compiled module, `path` relative to dist/ (e.g. "engine/warden.js"). */
export async function shipped<T>(path: string): Promise<T> {
  return (await import(pathToFileURL(join(DIST, path)).href)) as T;
}

/** The compiled CLI, as a command line for a child process. */
export const SHIPPED_CLI = [process.execPath, join(DIST, "cli", "main.js")];
