// Single validation rules of the import schemas (library and HTTP): each refusal writes nothing.
import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { API_KEY, openServerHarness, type ServerHarness } from "../server/server-harness.js";

const LONG = `xoxb-${"a".repeat(8_200)}`;

describe("library import refuses each bad credential shape, writing nothing", () => {
  let h: EngineHarness;
  beforeAll(async () => {
    h = await openEngineHarness("sqlite");
  });
  afterAll(async () => {
    await h.close();
  });

  const cases: [string, Record<string, unknown>][] = [
    // A snake_case field passed to the camelCase library: silently dropping it would import a
    // rotating token without its refresh token, which then dies at expiry.
    ["an unknown credential field", { accessToken: "xoxe.xoxb-1-a", refresh_token: "xoxe-1-r" }],
    [
      "both expiresAt and expiresIn",
      { accessToken: "xoxe.xoxb-1-a", expiresAt: Date.now() + 1_000, expiresIn: 60 },
    ],
    ["an access token over 8192 characters", { accessToken: LONG }],
    // Epoch seconds read as milliseconds: January 1970, so a long-lived token would import as expired.
    ["expiresAt in epoch seconds", { accessToken: "xoxb-1-a", expiresAt: 1_780_000_000 }],
  ];
  cases.forEach(([what, bot], i) => {
    it(what, async () => {
      const id = `T-bad-${i}`;
      await expect(
        h.warden.connections.import({ id, provider: "slack", credentials: { bot } } as never),
      ).rejects.toMatchObject({ code: "invalid_input" });
      await expect(h.warden.connections.get(id)).rejects.toMatchObject({ code: "not_found" });
    });
  });

  it("an expiresAt that already passed, but not decades ago, is taken as given", async () => {
    const expiresAt = h.clock.now() - 86_400_000;
    const c = await h.warden.connections.import({
      id: "T-expired-yesterday",
      provider: "slack",
      credentials: { bot: { accessToken: "xoxb-1-a", refreshToken: "xoxe-1-r", expiresAt } },
    });
    expect(c.credentials[0]?.expiresAtMs).toBe(expiresAt);
  });

  // A Slack installation holds bot and user credentials. A `default` one was stored as given, and then
  // nothing Slack-shaped found it: the proxy asks for the bot token (404), and tokens_revoked names bot
  // and user ids only. The CLI refused it already; the library and the API took it.
  it("a default credential on a Slack connection", async () => {
    const id = "T-default-kind";
    await expect(
      h.warden.connections.import({
        id,
        provider: "slack",
        credentials: { default: { accessToken: "xoxb-1", expiresIn: 600 } },
      }),
    ).rejects.toMatchObject({
      code: "invalid_input",
      message: expect.stringMatching(
        /credentials\.default: a slack connection holds bot and user credentials/,
      ),
    });
    await expect(h.warden.connections.get(id)).rejects.toMatchObject({ code: "not_found" });
  });

  // Metadata no store can hold (see the HTTP suite below for why).
  const deep = (levels: number): Record<string, unknown> => {
    let v: unknown = [];
    for (let i = 2; i < levels; i++) v = [v];
    return { a: v };
  };
  const metadataCases: Array<[string, Record<string, unknown>, RegExp]> = [
    ["nested 100,000 levels", deep(100_000), /metadata: must not nest deeper than 32 levels/],
    ["holding a lone surrogate", { name: "cut \ud83d" }, /metadata\.name: must be well-formed/],
  ];
  for (const [what, metadata, message] of metadataCases) {
    it(`metadata ${what}`, async () => {
      const id = "T-unstorable";
      const bot = { accessToken: "xoxb-1", expiresIn: 600 };
      await expect(
        h.warden.connections.import({ id, provider: "slack", credentials: { bot }, metadata }),
      ).rejects.toMatchObject({ code: "invalid_input", message: expect.stringMatching(message) });
      await expect(h.warden.connections.get(id)).rejects.toMatchObject({ code: "not_found" });
    });
  }
});

describe("HTTP import refuses each bad credential shape, writing nothing", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite");
  });
  afterAll(async () => {
    await h?.close();
  });

  const post = (id: string, bot: Record<string, unknown>): InjectOptions => ({
    method: "POST",
    url: "/v1/connections",
    headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
    payload: JSON.stringify({ id, provider: "slack", credentials: { bot } }),
  });
  const cases: [string, Record<string, unknown>][] = [
    // camelCase sent to the snake_case API: dropping it silently loses the refresh token.
    ["an unknown credential field", { access_token: "xoxe.xoxb-1-a", refreshToken: "xoxe-1-r" }],
    [
      "both expires_at and expires_in",
      { access_token: "xoxe.xoxb-1-a", expires_at: 2_000_000_000, expires_in: 60 },
    ],
    ["an access token over 8192 characters", { access_token: LONG }],
  ];
  cases.forEach(([what, bot], i) => {
    it(what, async () => {
      const id = `T-bad-${i}`;
      const res = await h.server.app.inject(post(id, bot));
      expect(res.statusCode).toBe(400);
      expect((res.json() as { error: { code: string } }).error.code).toBe("invalid_input");
      await expect(h.server.warden.connections.get(id)).rejects.toMatchObject({ code: "not_found" });
    });
  });
  it("a default credential on a Slack connection", async () => {
    const res = await h.server.app.inject({
      ...post("T-default-kind", {}),
      payload: JSON.stringify({
        id: "T-default-kind",
        provider: "slack",
        credentials: { default: { access_token: "xoxb-1", expires_in: 600 } },
      }),
    });
    expect(res.statusCode, res.body).toBe(400);
    const { error } = res.json() as { error: { code: string; message: string } };
    expect(error.code).toBe("invalid_input");
    expect(error.message).toMatch(/credentials\.default: a slack connection holds bot and user credentials/);
    await expect(h.server.warden.connections.get("T-default-kind")).rejects.toMatchObject({
      code: "not_found",
    });
  });
});

// Metadata and provider data a store cannot hold are the caller's error (400), never a 5xx: JSON
// nested thousands of levels deep (a stack overflow in validation, SQLite's 1000-level limit) or a
// lone UTF-16 surrogate (a name cut inside an emoji; PostgreSQL's jsonb refuses it).
describe.each(STORE_KINDS)("import of metadata a store cannot hold (%s)", (kind) => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness(kind);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** An import whose metadata (or bot provider_data) is the raw JSON `json`. */
  const importWith = (id: string, json: string, field: "metadata" | "provider_data" = "metadata") => {
    const bot = `{"access_token":"xoxb-1","expires_in":600${field === "provider_data" ? `,"provider_data":${json}` : ""}}`;
    return h.server.app.inject({
      method: "POST",
      url: "/v1/connections",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      payload: `{"id":"${id}","provider":"slack","credentials":{"bot":${bot}}${field === "metadata" ? `,"metadata":${json}` : ""}}`,
    });
  };
  const nested = (levels: number) => `{"a":${"[".repeat(levels - 1)}${"]".repeat(levels - 1)}}`;

  const refused: Array<[string, string, "metadata" | "provider_data", RegExp]> = [
    ["metadata nested 33 levels", nested(33), "metadata", /metadata: .*32 levels/],
    ["metadata nested 1,500 levels (past SQLite's JSON limit)", nested(1_500), "metadata", /32 levels/],
    ["metadata nested 100,000 levels (past the call stack)", nested(100_000), "metadata", /32 levels/],
    ["provider data nested 33 levels", nested(33), "provider_data", /provider_data: .*32 levels/],
    [
      "a lone surrogate in a metadata value",
      `{"team_name":"Acme \\ud83d"}`,
      "metadata",
      /team_name: .*well-formed/,
    ],
    ["a lone surrogate in a provider data key", `{"x\\udc00":1}`, "provider_data", /well-formed/],
  ];
  refused.forEach(([what, json, field, message], i) => {
    it(`refuses ${what} with 400 invalid_input, writing nothing`, async () => {
      const id = `T-unstorable-${i}`;
      const res = await importWith(id, json, field);
      expect(res.statusCode, res.body.slice(0, 300)).toBe(400);
      const { error } = res.json() as { error: { code: string; message: string } };
      expect(error.code).toBe("invalid_input");
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain("Acme");
      expect((await h.api(`/v1/connections/${id}`)).status).toBe(404);
    });
  });

  it("stores metadata 32 levels deep and text with a whole emoji", async () => {
    expect((await importWith("T-deep-ok", nested(32))).statusCode).toBe(201);
    const res = await importWith("T-emoji-ok", `{"team_name":"Acme \\ud83d\\ude00"}`);
    expect(res.statusCode, res.body).toBe(201);
    const shown = (await (await h.api("/v1/connections/T-emoji-ok")).json()) as { metadata: unknown };
    expect(shown.metadata).toEqual({ team_name: "Acme 😀" });
  });
});
