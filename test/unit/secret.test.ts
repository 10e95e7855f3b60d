import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { Secret } from "../../src/core/secret.js";
import { createSealer } from "../../src/crypto/seal.js";
import { sealTokens } from "../../src/store/credential-sealing.js";
import {
  type CredentialRecord,
  claimedCredentialFromRecord,
  credentialFromRecord,
} from "../../src/store/row-mapping.js";

describe("Secret", () => {
  it("never prints its value, however it is turned into text", () => {
    const s = new Secret("xoxb-PLAINTEXT");
    expect(JSON.stringify({ s })).toBe('{"s":"[redacted]"}');
    expect(`${s}`).toBe("[redacted]");
    expect(inspect(s)).not.toContain("PLAINTEXT");
    expect(s.reveal()).toBe("xoxb-PLAINTEXT");
  });

  it("deferred: produces its value on the first reveal only, and prints nothing either way", () => {
    let produced = 0;
    const s = Secret.deferred(() => {
      produced++;
      return "xoxb-PLAINTEXT";
    });
    expect(JSON.stringify({ s })).toBe('{"s":"[redacted]"}');
    expect(inspect(s)).not.toContain("PLAINTEXT");
    expect(produced).toBe(0);
    expect(s.reveal()).toBe("xoxb-PLAINTEXT");
    expect(s.reveal()).toBe("xoxb-PLAINTEXT");
    expect(produced).toBe(1);
  });

  it("deferred: a failure to produce is thrown at reveal, and again at the next", () => {
    const s = Secret.deferred(() => {
      throw new Error("authentication failed");
    });
    expect(() => s.reveal()).toThrow("authentication failed");
    expect(() => s.reveal()).toThrow("authentication failed");
  });
});

describe("a credential claimed for a background refresh", () => {
  const sealer = createSealer(Buffer.alloc(32, 7).toString("base64"));
  const ref = { connectionId: "T1", kind: "bot" as const };
  const record = {
    ...ref,
    provider: "slack",
    ...sealTokens(sealer, ref, {
      accessToken: new Secret("xoxb-access-PLAINTEXT"),
      refreshToken: new Secret("xoxe-refresh-PLAINTEXT"),
      tokenType: "bot",
      expiresAtMs: 10_000,
      scopes: [],
    }),
  } as CredentialRecord;

  it("opens the refresh token at once and the access token only when it is read", () => {
    const opened: string[] = [];
    const counting = {
      ...sealer,
      open: (sealed: string, aad: string) => {
        opened.push(aad.split("\u0000")[2] ?? "");
        return sealer.open(sealed, aad);
      },
    } as typeof sealer;
    const claimed = claimedCredentialFromRecord(record, counting);
    expect(opened).toEqual(["refresh"]);
    expect(claimed.refreshToken?.reveal()).toBe("xoxe-refresh-PLAINTEXT");
    expect(claimed.accessToken.reveal()).toBe("xoxb-access-PLAINTEXT");
    expect(opened).toEqual(["refresh", "access"]);
    expect(claimed).toEqual({ ...credentialFromRecord(record, sealer), accessToken: claimed.accessToken });
  });

  it("still refuses an access token moved from another row, when it is read", () => {
    const moved = { ...record, connectionId: "T2" };
    const sealedElsewhere = sealTokens(
      sealer,
      { connectionId: "T2", kind: "bot" },
      {
        accessToken: new Secret("x"),
        refreshToken: new Secret("y"),
        tokenType: "bot",
        expiresAtMs: null,
        scopes: [],
      },
    );
    const claimed = claimedCredentialFromRecord(
      { ...moved, ...sealedElsewhere, accessTokenSealed: record.accessTokenSealed },
      sealer,
    );
    expect(() => claimed.accessToken.reveal()).toThrow(/failed authentication/);
  });
});
