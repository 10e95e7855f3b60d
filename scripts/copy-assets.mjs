// tsc copies only .ts output; SQL migrations and static assets ship beside the compiled code.
import { cpSync, existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const ASSET = /\.(sql|html|css|svg)$/;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (ASSET.test(name)) cpSync(path, join("dist", relative("src", path)));
  }
}
// A migration renamed or removed in src must not linger in dist and be applied from there.
rmSync(join("dist", "store", "migrations"), { recursive: true, force: true });
if (existsSync("src")) walk("src");
