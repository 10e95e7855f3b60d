import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { Secret } from "../../src/core/secret.js";
import { returnUrlWith, verifyReturnUrl } from "../../src/server/return-url.js";

const SECRET = "whsec-return-url-test";
const NOW = Date.UTC(2026, 5, 1);
const signing = { secret: new Secret(SECRET), nowMs: NOW };
const verify = (url: string, nowMs = NOW) => verifyReturnUrl({ secret: SECRET, url, nowMs });

describe("the signed redirect back to a return_url", () => {
  const sent = returnUrlWith(
    "https://app.example.com/slack/done?user_nonce=n-123",
    { connection_id: "T123", status: "installed" },
    signing,
  );

  it("carries the app's own parameters, ours, a timestamp and a signature over all of them", () => {
    const q = new URL(sent).searchParams;
    expect(q.get("user_nonce")).toBe("n-123");
    expect(q.get("connection_id")).toBe("T123");
    expect(q.get("status")).toBe("installed");
    expect(q.get("tw_timestamp")).toBe(String(NOW / 1000));
    expect(q.get("tw_signature")).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(sent.endsWith(`tw_signature=${q.get("tw_signature")}`)).toBe(true);
    expect(verify(sent)).toBe(true);
    expect(verify(sent, NOW + 299_000)).toBe(true);
  });

  it("fails for another connection id, another user's nonce, an appended parameter, another secret", () => {
    expect(verify(sent.replace("connection_id=T123", "connection_id=T999"))).toBe(false);
    expect(verify(sent.replace("user_nonce=n-123", "user_nonce=n-666"))).toBe(false);
    expect(verify(`${sent}&connection_id=T999`)).toBe(false);
    expect(verifyReturnUrl({ secret: "another", url: sent, nowMs: NOW })).toBe(false);
    expect(verify(sent.replace(/tw_signature=.*$/, ""))).toBe(false);
    expect(verify("not a url")).toBe(false);
  });

  it("fails outside the five-minute window, either way", () => {
    expect(verify(sent, NOW + 301_000)).toBe(false);
    expect(verify(sent, NOW - 301_000)).toBe(false);
  });

  it("drops a tw_signature or tw_timestamp the return_url already held, so none rides inside the signed part", () => {
    const planted = returnUrlWith(
      "https://app.example.com/done?tw_timestamp=1&tw_signature=v1%3Dforged&x=1",
      { connection_id: "T1", status: "installed" },
      signing,
    );
    const q = new URL(planted).searchParams;
    expect(q.getAll("tw_timestamp")).toEqual([String(NOW / 1000)]);
    expect(q.getAll("tw_signature")).toHaveLength(1);
    expect(q.get("x")).toBe("1");
    expect(verify(planted)).toBe(true);
  });

  // Frameworks read some names as others: ASP.NET's query keys ignore case (and its binder takes the
  // first value), PHP turns `.` and spaces into `_`, PHP, Rack and qs read `name[…]` as `name`. A
  // look-alike the link's author planted must not ride inside the signature beside ours.
  it("drops the app's parameters a framework would read as one of ours", () => {
    const planted = returnUrlWith(
      "https://app.example.com/done?Connection_ID=T0V&connection.id=T0V&connection+id=T0V&connection_id%5B%5D=T0V&STATUS=x&Tw_Signature=y&nonce=n-1&connection_ids=kept",
      { connection_id: "T1", status: "installed" },
      signing,
    );
    const q = new URL(planted).searchParams;
    expect([...q.keys()]).toEqual([
      "nonce",
      "connection_ids",
      "connection_id",
      "status",
      "tw_timestamp",
      "tw_signature",
    ]);
    expect(verify(planted)).toBe(true);
  });

  it("is left unsigned without a secret", () => {
    const plain = returnUrlWith("https://app.example.com/done", { error: "access_denied" }, null);
    expect(plain).toBe("https://app.example.com/done?error=access_denied");
    expect(verify(plain)).toBe(false);
  });
});

// The README's verifier, run as written on what the server sends, so the documentation cannot drift.
describe("the README's verifyReturn", () => {
  const readme = readFileSync(join(import.meta.dirname, "..", "..", "README.md"), "utf8");
  const block = readme
    .split(/^```ts\n/m)
    .map((rest) => rest.slice(0, rest.indexOf("\n```")))
    .find((code) => code.includes("function verifyReturn("));
  const source = ts.transpileModule(`${block ?? ""}\nexport { verifyReturn };`, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  }).outputText;
  const exports: { verifyReturn?: (url: string, secret: string) => URLSearchParams | null } = {};
  new Function("exports", "require", source)(exports, createRequire(import.meta.url));

  it("accepts what the server signs now and refuses a changed connection id", () => {
    expect(block).toBeDefined();
    const url = returnUrlWith(
      "https://app.example.com/done?nonce=n-1",
      { connection_id: "T123", status: "installed" },
      { secret: new Secret(SECRET), nowMs: Date.now() },
    );
    expect(exports.verifyReturn?.(url, SECRET)?.get("connection_id")).toBe("T123");
    expect(exports.verifyReturn?.(url.replace("T123", "T999"), SECRET)).toBeNull();
    expect(exports.verifyReturn?.(url, "another secret")).toBeNull();
  });
});
