// The associated data binds a sealed token to its connection, its kind and its field.
import { describe, expect, it } from "vitest";
import { Secret } from "../../src/core/secret.js";
import { openTokens, sealTokens } from "../../src/store/credential-sealing.js";
import { testSealer } from "../helpers/store-fixtures.js";

const sealer = testSealer();
const bot = { connectionId: "T1", kind: "bot" as const };
const sealed = sealTokens(sealer, bot, {
  accessToken: new Secret("xoxb-access-PLAINTEXT"),
  refreshToken: new Secret("xoxe-refresh-PLAINTEXT"),
  tokenType: "bot",
  expiresAtMs: 10_000,
  scopes: [],
});

describe("token sealing binds row and field", () => {
  it("opens in place", () => {
    expect(openTokens(sealer, { ...bot, ...sealed })).toEqual({
      accessToken: "xoxb-access-PLAINTEXT",
      refreshToken: "xoxe-refresh-PLAINTEXT",
    });
  });

  it("refuses a bot credential's tokens copied to the user credential of the same connection", () => {
    expect(() => openTokens(sealer, { connectionId: "T1", kind: "user", ...sealed })).toThrow(/moved/);
  });

  it("refuses a refresh token copied into the access-token field, and vice versa", () => {
    expect(() =>
      openTokens(sealer, {
        ...bot,
        accessTokenSealed: sealed.refreshTokenSealed as string,
        refreshTokenSealed: null,
      }),
    ).toThrow(/moved/);
    expect(() =>
      openTokens(sealer, {
        ...bot,
        accessTokenSealed: sealed.accessTokenSealed,
        refreshTokenSealed: sealed.accessTokenSealed,
      }),
    ).toThrow(/moved/);
  });

  it("refuses a value moved to another connection", () => {
    expect(() => openTokens(sealer, { connectionId: "T2", kind: "bot", ...sealed })).toThrow(/moved/);
  });
});
