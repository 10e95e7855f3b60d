import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = join(import.meta.dirname, "../../src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specifiers: string[] = [];
  for (const m of text.matchAll(
    /(?:import|export)\s[^'"]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g,
  )) {
    specifiers.push((m[1] ?? m[2]) as string);
  }
  return specifiers;
}

function violations(folder: string, isForbidden: (specifier: string, file: string) => boolean): string[] {
  return sourceFiles(join(SRC, folder)).flatMap((file) =>
    importsOf(file)
      .filter((s) => isForbidden(s, file))
      .map((s) => `${relative(SRC, file)} imports ${s}`),
  );
}

const IO_MODULES = /^(node:|pg$|better-sqlite3|undici|fastify|pino|prom-client|commander)/;

describe("architecture", () => {
  it("finds the source files it checks", () => {
    expect(sourceFiles(join(SRC, "core")).length).toBeGreaterThan(3);
  });

  it("keeps src/core free of I/O and of outer folders", () => {
    const bad = violations(
      "core",
      (s) => IO_MODULES.test(s) || (s.startsWith("..") && !s.startsWith("../core")),
    );
    expect(bad).toEqual([]);
  });

  it("keeps core free of the clock and of fetch", () => {
    const bad = sourceFiles(join(SRC, "core")).filter((f) =>
      /\bDate\.now\(|\bnew Date\(\)|\bfetch\(|\bsetTimeout\(|\bMath\.random\(/.test(readFileSync(f, "utf8")),
    );
    expect(bad.map((f) => relative(SRC, f))).toEqual([]);
  });

  it("keeps the emulator independent of our Slack provider", () => {
    const bad = violations("emulator", (s) => s.includes("providers/") || s.includes("/engine/"));
    expect(bad).toEqual([]);
  });

  it("points adapters inward: store, crypto and providers never import the engine or surfaces", () => {
    const outer = /(\/|^)(engine|server|cli)\//;
    const bad = ["store", "crypto", "providers"].flatMap((folder) =>
      violations(folder, (s) => outer.test(s)),
    );
    expect(bad).toEqual([]);
  });

  it("detects a forbidden import (the check itself can fail)", () => {
    expect(IO_MODULES.test("node:fs")).toBe(true);
    expect(importsOf(join(SRC, "core/ports.ts"))).toContain("./types.js");
  });
});
