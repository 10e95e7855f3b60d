// The pure half of diagnose, on fixtures: prefixes, fingerprints, cause tables, import parsing, purity.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseImportFile } from "../../src/cli/import-file.js";
import { CAUSE_CODES } from "../../src/diagnose/diagnosis.js";
import { causesOfAuthError, causesOfRefreshRefusal, explainToken } from "../../src/diagnose/explain-token.js";
import { renderDiagnosis } from "../../src/diagnose/render-diagnosis.js";
import { fingerprint, foreignCharacter, recognizeToken } from "../../src/diagnose/token-shape.js";

const context = { baseUrl: "https://slack.com" };

describe("token shapes", () => {
  it.each([
    ["xoxe.xoxb-1-abc", "bot", true],
    ["xoxe.xoxp-1-abc", "user", true],
    ["xoxe-1-abc", "refresh", true],
    ["xoxb-1-2-abc", "bot", false],
    ["xoxp-1-2-3-abc", "user", false],
    ["xapp-1-abc", "unknown", false],
    ["hello", "unknown", false],
  ] as const)("%s is %s (rotating %s)", (token, kind, rotating) => {
    expect(recognizeToken(token)).toMatchObject({ kind, rotating });
  });

  it("a fingerprint never holds the token's body", () => {
    const token = "xoxe.xoxb-1-SECRETSECRETSECRETSECRET9f3a";
    const f = fingerprint(token);
    expect(f).toMatch(/^xoxe\.xoxb-…9f3a \(sha256:[0-9a-f]{8}\)$/);
    expect(f).not.toContain("SECRET");
    expect(fingerprint("xoxb-short")).toMatch(/^xoxb-… \(sha256:/);
  });

  it.each([
    ["\u201cxoxb-1-abc\u201d", "a typographic quote (U+201C)"],
    ["xoxb-1\u200b-abc", "an invisible character (U+200B)"],
    ["xoxb-1\u00a0abc", "whitespace (U+00A0)"],
    ["xoxb-1\u0007abc", "a control character (U+0007)"],
    ["xoxb-1-\u00e9", "a non-ASCII character (U+00E9)"],
    ["xoxe.xoxb-1-abc", null],
  ] as const)("a pasted %j: %s", (token, problem) => {
    expect(foreignCharacter(token)).toBe(problem);
  });
});

describe("explanations", () => {
  it("every cause code it can produce is in the documented list", () => {
    const codes = new Set<string>(CAUSE_CODES);
    for (const error of [
      "token_expired",
      "token_revoked",
      "account_inactive",
      "invalid_auth",
      "not_authed",
    ]) {
      for (const kind of ["bot", "user"] as const) {
        for (const c of causesOfAuthError(error, { kind, rotating: true }))
          expect(codes.has(c.code)).toBe(true);
      }
    }
    for (const c of causesOfRefreshRefusal("invalid_refresh_token")) expect(codes.has(c.code)).toBe(true);
  });

  it("token_revoked on a user token puts app_uninstalled first; on a bot token admin_revoked", () => {
    expect(causesOfAuthError("token_revoked", { kind: "user", rotating: false })[0]?.code).toBe(
      "app_uninstalled",
    );
    expect(causesOfAuthError("token_revoked", { kind: "bot", rotating: true })[0]?.code).toBe(
      "admin_revoked",
    );
  });

  it("invalid_auth for a value with no Slack prefix leads with token_unknown; for a token, reinstalled", () => {
    const explained = (value: string) =>
      explainToken({
        shape: recognizeToken(value),
        authTest: {
          kind: "failed",
          classification: { kind: "dead", reason: "invalid_auth", error: "invalid_auth" },
        },
        context,
      });
    const leading = (value: string) => explained(value).causes[0]?.code;
    expect(leading("my-slack-app-password-123")).toBe("token_unknown");
    expect(leading("xoxb-1-2-abc")).toBe("reinstalled");
    // And the first step is to check the value, not to reinstall; a real token goes straight there.
    expect(explained("my-slack-app-password-123").fix[0]).toMatch(/^Check that this is the token you meant/);
    expect(explained("xoxb-1-2-abc").fix[0]).toMatch(/^Reinstall the app/);
  });

  it("an unknown Slack error is unreachable-style transient, never a dead verdict", () => {
    const d = explainToken({
      shape: recognizeToken("xoxb-1"),
      authTest: {
        kind: "failed",
        classification: { kind: "transient", reason: "provider_unavailable", error: "weird_new_code" },
      },
      context,
    });
    expect(d).toMatchObject({ verdict: "unreachable", error: "weird_new_code" });
  });

  it("says whose words an error is: Slack's code, or no answer at all", () => {
    const rendered = (error: string) =>
      renderDiagnosis(
        explainToken({
          shape: recognizeToken("xoxb-1"),
          authTest: {
            kind: "failed",
            classification: { kind: "transient", reason: "provider_unavailable", error },
          },
          context,
        }),
        { subject: "token xoxb-1" },
      );
    expect(rendered("weird_new_code")).toContain("Slack said: weird_new_code");
    for (const label of ["ECONNREFUSED", "timeout", "http_503", "invalid_response"]) {
      expect(rendered(label)).toContain(`No usable answer from Slack: ${label}`);
      expect(rendered(label)).not.toContain("Slack said");
    }
  });
});

describe("import files", () => {
  it("reads an @slack/oauth installation: epoch seconds become ms, ids become provider data", () => {
    const [input] = parseImportFile(
      JSON.stringify({
        team: { id: "T1", name: "Acme" },
        bot: {
          token: "xoxe.xoxb-1-a",
          refreshToken: "xoxe-1-b",
          expiresAt: 1_800_000_000,
          scopes: ["chat:write"],
          id: "B1",
          userId: "U1",
        },
        user: {
          token: "xoxe.xoxp-1-c",
          refreshToken: "xoxe-1-d",
          expiresAt: 1_800_000_000,
          scopes: ["users:read"],
          id: "U2",
        },
        isEnterpriseInstall: false,
      }),
    );
    expect(input).toMatchObject({
      id: "T1",
      provider: "slack",
      credentials: {
        bot: { expiresAt: 1_800_000_000_000, providerData: { bot_user_id: "U1", bot_id: "B1" } },
        user: { providerData: { user_id: "U2" } },
      },
      // What the install flow stores for the same install: its lookups read these keys.
      metadata: { team_id: "T1", team_name: "Acme", authed_user_id: "U2", bot_user_id: "U1" },
    });
  });

  it("an org-wide install is keyed by the enterprise id", () => {
    const [input] = parseImportFile(
      JSON.stringify({
        enterprise: { id: "E1" },
        isEnterpriseInstall: true,
        bot: { token: "xoxb-1", scopes: [] },
      }),
    );
    expect(input?.id).toBe("E1");
  });

  it("refuses milliseconds where @slack/oauth has seconds, naming the field", () => {
    expect(() =>
      parseImportFile(
        JSON.stringify({ team: { id: "T1" }, bot: { token: "xoxb-1", expiresAt: 1_800_000_000_000 } }),
      ),
    ).toThrow(/bot\.expiresAt: must be epoch SECONDS/);
  });

  it("never echoes a token in an error, even from broken JSON", () => {
    const token = "xoxb-123-456-SUPERSECRET";
    for (const text of [
      `{"id":"x","provider":"slack","credentials":{"bot":{"accessToken":"${token}",}}}`,
      `[{"team":{"id":1},"bot":{"token":"${token}"}}]`,
    ]) {
      let message = "";
      try {
        parseImportFile(text);
      } catch (error) {
        message = String(error);
      }
      expect(message).not.toBe("");
      expect(message).not.toContain("SUPERSECRET");
    }
  });

  it("refuses a duplicate id", () => {
    const one = { id: "a", provider: "slack", credentials: { bot: { accessToken: "xoxb-1" } } };
    expect(() => parseImportFile(JSON.stringify([one, one]))).toThrow(/\[1\]: id a appears twice/);
  });
});

describe("architecture", () => {
  it("keeps src/diagnose pure: only core and node:crypto, no engine, store, providers or CLI", () => {
    const dir = join(import.meta.dirname, "../../src/diagnose");
    const bad: string[] = [];
    for (const file of readdirSync(dir)) {
      for (const m of readFileSync(join(dir, file), "utf8").matchAll(/from\s+"([^"]+)"/g)) {
        const spec = m[1] ?? "";
        const ok = spec === "node:crypto" || spec.startsWith("./") || spec.startsWith("../core/");
        if (!ok) bad.push(`${file} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
