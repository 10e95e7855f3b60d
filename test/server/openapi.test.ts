// /openapi.json is generated from the routes' own schemas: every route is in it, with the query
// parameters it takes, and it is served without the API key.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openServerHarness, type ServerHarness } from "./server-harness.js";

describe("/openapi.json", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite");
  });
  afterAll(async () => {
    await h?.close();
  });

  it("describes every route of the contract, with the token route's query parameters", async () => {
    const res = await fetch(`${h.server.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<string, { parameters?: Array<{ name: string; in: string; schema: unknown }> }>
      >;
    };
    expect(doc.openapi).toMatch(/^3\.1/);
    for (const path of [
      "/healthz",
      "/metrics",
      "/v1/connections",
      "/v1/connections/{id}",
      "/v1/connections/{id}/token",
      "/v1/connections/{id}/refresh",
      "/v1/connections/{id}/check",
      "/v1/connections/{id}/events",
      "/v1/connect-sessions",
      "/oauth/slack/install",
      "/oauth/slack/callback",
      "/slack/events",
    ]) {
      expect(Object.keys(doc.paths), path).toContain(path);
    }
    const token = doc.paths["/v1/connections/{id}/token"]?.["get"]?.parameters ?? [];
    expect(token.filter((p) => p.in === "query").map((p) => p.name)).toEqual(["kind", "min_ttl"]);
    expect(JSON.stringify(token.find((p) => p.name === "min_ttl")?.schema)).toContain("pattern");
  });
});
