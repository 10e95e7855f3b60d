// Runs every bench/*.bench.ts (or those named on the command line) in turn.
// Each exports `run(): Promise<BenchReport[]>` and measures its subject beside a
// baseline in the same run; this prints both and their ratio.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { BenchReport } from "./report.js";
import { formatReport } from "./report.js";

const dir = import.meta.dirname;
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

for (const file of files) {
  const mod = (await import(pathToFileURL(join(dir, file)).href)) as { run(): Promise<BenchReport[]> };
  console.log(`\n## ${file}`);
  for (const report of await mod.run()) console.log(formatReport(report));
}
