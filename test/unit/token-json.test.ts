import { describe, expect, it } from "vitest";
import type { AccessToken } from "../../src/engine/get-token.js";
import { TokenViewSchema, tokenJson } from "../../src/server/wire.js";

/** The answer written the plain way: the oracle the hand-built body must match byte for byte. */
function tokenView(t: AccessToken, nowMs: number) {
  const expiresAtMs = t.expiresAt === null ? null : t.expiresAt.getTime();
  return {
    access_token: t.accessToken,
    token_type: t.tokenType,
    kind: t.kind,
    expires_at: expiresAtMs === null ? null : new Date(expiresAtMs).toISOString(),
    expires_in: expiresAtMs === null ? null : Math.max(0, Math.floor((expiresAtMs - nowMs) / 1000)),
  };
}

const NOW = Date.UTC(2026, 10, 22, 3, 0, 0);

const cases: Array<[string, AccessToken]> = [
  [
    "a bot token expiring in 12 h",
    {
      accessToken: "xoxe.xoxb-1-abc",
      tokenType: "bot",
      kind: "bot",
      expiresAt: new Date(NOW + 43_200_500),
      provider: "slack",
    },
  ],
  [
    "a token that never expires",
    { accessToken: "xoxb-1", tokenType: "bot", kind: "bot", expiresAt: null, provider: "slack" },
  ],
  [
    "an expiry already past (expires_in is never negative)",
    {
      accessToken: "xoxp-2",
      tokenType: "user",
      kind: "user",
      expiresAt: new Date(NOW - 5_000),
      provider: "slack",
    },
  ],
  [
    "characters JSON must escape",
    {
      accessToken: 'ab"c\\d\u0000\u2028é\ud83d',
      tokenType: 'Bearer "x"',
      kind: "default",
      expiresAt: new Date(NOW + 1),
      provider: "github",
    },
  ],
];

describe("tokenJson (the token route's hand-built body)", () => {
  it.each(cases)("is byte for byte JSON.stringify(tokenView(…)): %s", (_name, token) => {
    const body = tokenJson(token, NOW);
    expect(body).toBe(JSON.stringify(tokenView(token, NOW)));
    expect(TokenViewSchema.strict().parse(JSON.parse(body))).toEqual(tokenView(token, NOW));
  });

  it("formats the same instant the same way on later calls (memo) and a new instant afresh", () => {
    const t = (ms: number): AccessToken => ({
      accessToken: "x",
      tokenType: "bot",
      kind: "bot",
      expiresAt: new Date(ms),
      provider: "slack",
    });
    const first = JSON.parse(tokenJson(t(NOW + 60_000), NOW)) as { expires_at: string };
    const again = JSON.parse(tokenJson(t(NOW + 60_000), NOW + 30_000)) as {
      expires_at: string;
      expires_in: number;
    };
    const other = JSON.parse(tokenJson(t(NOW + 120_000), NOW)) as { expires_at: string };
    expect(again.expires_at).toBe(first.expires_at);
    expect(again.expires_in).toBe(30);
    expect(other.expires_at).toBe(new Date(NOW + 120_000).toISOString());
  });
});
