// Single validation rules of the import schemas (library and HTTP): each refusal writes nothing.
import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
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
});
