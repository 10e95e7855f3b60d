// withToken reads Slack's verdict from what its function threw or returned, and acts on it (a dead
// answer marks the connection needs_reauth). Only Slack's own envelope may count: another library's
// error that happens to carry an `error` field is not Slack speaking about this token.
import { WebClient } from "@slack/web-api";
import { describe, expect, it } from "vitest";
import { defaultErrorOf } from "../../src/engine/with-token.js";
import { emulator } from "../emulator/emulator-harness.js";

describe("defaultErrorOf", () => {
  it("reads @slack/web-api's thrown error and a returned { ok: false, error } body", async () => {
    const emu = await emulator();
    const web = new WebClient("xoxb-not-a-token", {
      slackApiUrl: `${emu.url}/api/`,
      retryConfig: { retries: 0 },
    });
    const thrown = await web.auth.test().catch((error: unknown) => error);
    expect(defaultErrorOf(thrown)).toBe("invalid_auth");
    expect(defaultErrorOf({ ok: false, error: "token_expired" })).toBe("token_expired");
    expect(defaultErrorOf({ ok: true, user_id: "U1" })).toBeNull();
  });

  it("takes nothing from an error that is not Slack's envelope", () => {
    // An OAuth client's error (openid-client's, simple-oauth2's) inside fn: about another provider.
    expect(defaultErrorOf({ error: "invalid_grant", error_description: "expired" })).toBeNull();
    expect(defaultErrorOf(Object.assign(new Error("boom"), { error: "token_revoked" }))).toBeNull();
    // A gateway's JSON without Slack's ok field, wrapped by a client.
    expect(defaultErrorOf({ data: { error: "account_inactive" } })).toBeNull();
    expect(defaultErrorOf("invalid_auth")).toBeNull();
    expect(defaultErrorOf(null)).toBeNull();
  });
});
