import { describe, expect, it } from "vitest";
import { classifySlackError, SLACK_ERRORS } from "../../src/providers/slack/slack-errors.js";

/** Fixture bodies as Slack sends them (slack-api.md §2.3.5, §3.5, §3.7, §4.5, §5). */
const BODIES = {
  token_expired: { ok: false, error: "token_expired" },
  token_revoked: { ok: false, error: "token_revoked" },
  invalid_refresh_token: { ok: false, error: "invalid_refresh_token" },
  account_inactive: { ok: false, error: "account_inactive" },
  invalid_auth: { ok: false, error: "invalid_auth" },
  bad_client_secret: { ok: false, error: "bad_client_secret" },
  invalid_client_id: { ok: false, error: "invalid_client_id" },
  ratelimited: { ok: false, error: "ratelimited" },
  internal_error: { ok: false, error: "internal_error" },
  fatal_error: { ok: false, error: "fatal_error" },
  missing_scope: { ok: false, error: "missing_scope", needed: "chat:write", provided: "commands" },
  invalid_grant_rfc: { error: "invalid_grant", error_description: "Token has been expired or revoked." },
} as const;

describe("Slack error classification", () => {
  it.each([
    ["token_expired", 200, { kind: "refreshable", error: "token_expired" }],
    ["token_revoked", 200, { kind: "dead", reason: "token_revoked", error: "token_revoked" }],
    [
      "invalid_refresh_token",
      200,
      { kind: "dead", reason: "invalid_refresh_token", error: "invalid_refresh_token" },
    ],
    ["account_inactive", 200, { kind: "dead", reason: "account_inactive", error: "account_inactive" }],
    ["invalid_auth", 200, { kind: "dead", reason: "invalid_auth", error: "invalid_auth" }],
    [
      "bad_client_secret",
      200,
      { kind: "misconfigured", reason: "provider_misconfigured", error: "bad_client_secret" },
    ],
    [
      "invalid_client_id",
      200,
      { kind: "misconfigured", reason: "provider_misconfigured", error: "invalid_client_id" },
    ],
    ["internal_error", 200, { kind: "transient", reason: "provider_unavailable", error: "internal_error" }],
    ["fatal_error", 200, { kind: "transient", reason: "provider_unavailable", error: "fatal_error" }],
    ["missing_scope", 200, { kind: "forbidden", reason: "missing_scope", error: "missing_scope" }],
    ["invalid_grant_rfc", 400, { kind: "dead", reason: "invalid_grant", error: "invalid_grant" }],
  ] as const)("%s (HTTP %i)", (fixture, status, expected) => {
    expect(classifySlackError(BODIES[fixture].error, status)).toEqual(expected);
  });

  it("429 is rate_limited with Retry-After, whatever the body says", () => {
    expect(classifySlackError(BODIES.ratelimited.error, 429, 30_000)).toEqual({
      kind: "transient",
      reason: "rate_limited",
      error: "ratelimited",
      retryAfterMs: 30_000,
    });
    expect(classifySlackError(undefined, 429)).toEqual({
      kind: "transient",
      reason: "rate_limited",
      error: "http_429",
    });
    expect(classifySlackError("token_revoked", 429).kind).toBe("transient");
  });

  it("5xx is transient even with a dead-looking body; the HTTP status never decides otherwise", () => {
    expect(classifySlackError(undefined, 503)).toEqual({
      kind: "transient",
      reason: "provider_unavailable",
      error: "http_503",
    });
    expect(classifySlackError("invalid_refresh_token", 500).kind).toBe("transient");
    // Slack's refresh errors come as 200; a 400 with a Slack code is classified by the code.
    expect(classifySlackError("invalid_refresh_token", 400).kind).toBe("dead");
  });

  it("unknown codes, prototype names and odd strings never kill a connection", () => {
    for (const code of [
      "brand_new_error",
      "constructor",
      "__proto__",
      "hasOwnProperty",
      "",
      7,
      null,
      undefined,
    ]) {
      expect(classifySlackError(code, 200).kind).toBe("transient");
    }
    expect(classifySlackError("xoxe.xoxb-1-secret token", 200).error).toBe("unrecognized_error");
  });

  it("every dead row names its own code as the reason or a documented alias", () => {
    for (const [code, rule] of Object.entries(SLACK_ERRORS)) {
      if (rule.kind === "dead") expect(rule.reason).toBe(code);
    }
  });

  it("app_uninstalled (an event) and invalid_grant (never sent by Slack) are terminal", () => {
    expect(classifySlackError("app_uninstalled", 200)).toMatchObject({
      kind: "dead",
      reason: "app_uninstalled",
    });
    expect(classifySlackError("invalid_grant", 200)).toMatchObject({ kind: "dead", reason: "invalid_grant" });
  });
});
