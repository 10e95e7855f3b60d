// A credential whose tokens the ring cannot open is explained by the key. When another credential of
// the connection is dead, that death is still the connection's story (restoring the key leaves it
// dead; only a reconnect revives it), so both are said.
import { describe, expect, it } from "vitest";
import type { Connection, CredentialKind, CredentialSummary, Status } from "../../src/core/types.js";
import { explainConnection } from "../../src/diagnose/explain-connection.js";

const NOW = Date.UTC(2026, 0, 1);

function credential(kind: CredentialKind, status: Status): CredentialSummary {
  return {
    kind,
    status,
    reason: status === "needs_reauth" ? "token_revoked" : null,
    lastError: status === "needs_reauth" ? "token_revoked" : null,
    tokenType: kind,
    scopes: [],
    expiresAtMs: NOW + 3_600_000,
    issuedAtMs: NOW - 3_600_000,
    refreshedAtMs: null,
    hasRefreshToken: true,
    failureCount: 0,
    nextAttemptAtMs: null,
    version: 1,
    providerData: {},
  };
}

function connection(credentials: CredentialSummary[]): Connection {
  const dead = credentials.find((c) => c.status === "needs_reauth");
  return {
    id: "T1",
    provider: "slack",
    status: dead ? "needs_reauth" : "active",
    reason: dead ? "token_revoked" : null,
    metadata: {},
    createdAtMs: NOW - 7_200_000,
    updatedAtMs: NOW - 60_000,
    credentials,
  };
}

const explain = (c: Connection, unopenable: CredentialKind[]) =>
  explainConnection({
    connection: c,
    events: [],
    refreshInDoubt: [],
    unopenable: unopenable.map((kind) => ({ kind, problem: 'a stored secret is sealed with key id "k1"' })),
    providerState: null,
    nowMs: NOW,
    context: { baseUrl: "http://127.0.0.1:3999" },
  }).diagnosis;

describe("diagnose connection: tokens the key ring cannot open", () => {
  it("alone: the key is the story", () => {
    const d = explain(connection([credential("bot", "active"), credential("user", "active")]), ["user"]);
    expect(d.verdict).toBe("misconfigured");
    expect(d.causes.map((c) => c.code)).toEqual(["encryption_key_missing"]);
  });

  it("beside a dead credential: its death stays the verdict, and the key is named too", () => {
    const withKey = explain(connection([credential("bot", "needs_reauth"), credential("user", "active")]), [
      "user",
    ]);
    const without = explain(
      connection([credential("bot", "needs_reauth"), credential("user", "active")]),
      [],
    );
    expect(withKey.verdict).toBe(without.verdict);
    expect(withKey.causes.map((c) => c.code)).toEqual(
      expect.arrayContaining([...without.causes.map((c) => c.code), "encryption_key_missing"]),
    );
    expect(withKey.fix).toEqual(expect.arrayContaining(without.fix));
    expect(withKey.fix.join("\n")).toContain("TOKENWARDEN_ENCRYPTION_KEY");
  });
});
