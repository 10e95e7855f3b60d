import { describe, expect, it } from "vitest";
import { signSlackRequest, verifySlackSignature } from "../../src/providers/slack/slack-signature.js";

// slack-api.md §6.4 test vector.
const SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const TS = "1531420618";
const BODY =
  "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
const SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
const NOW = Number(TS) * 1000;

const base = { signingSecret: SECRET, timestampHeader: TS, signatureHeader: SIG, rawBody: BODY, nowMs: NOW };

describe("Slack request signing", () => {
  it("signs the documented test vector", () => {
    expect(signSlackRequest(SECRET, Number(TS), BODY)).toBe(SIG);
    expect(signSlackRequest(SECRET, TS, Buffer.from(BODY))).toBe(SIG);
  });

  it("verifies the documented test vector, as string or bytes, header arrays too", () => {
    expect(verifySlackSignature(base)).toEqual({ ok: true });
    expect(verifySlackSignature({ ...base, rawBody: Buffer.from(BODY) })).toEqual({ ok: true });
    expect(
      verifySlackSignature({ ...base, signatureHeader: [SIG.toUpperCase().replace("V0", "v0")] }),
    ).toEqual({
      ok: true,
    });
  });

  it("refuses a changed body or a wrong secret", () => {
    expect(verifySlackSignature({ ...base, rawBody: `${BODY}x` })).toEqual({ ok: false, reason: "mismatch" });
    expect(verifySlackSignature({ ...base, signingSecret: "other" })).toEqual({
      ok: false,
      reason: "mismatch",
    });
  });

  it("refuses stale and future timestamps beyond the tolerance (absolute difference)", () => {
    expect(verifySlackSignature({ ...base, nowMs: NOW + 300_000 })).toEqual({ ok: true });
    expect(verifySlackSignature({ ...base, nowMs: NOW + 301_000 })).toEqual({ ok: false, reason: "stale" });
    expect(verifySlackSignature({ ...base, nowMs: NOW - 301_000 })).toEqual({ ok: false, reason: "stale" });
    expect(verifySlackSignature({ ...base, nowMs: NOW + 60_000, toleranceSeconds: 30 })).toEqual({
      ok: false,
      reason: "stale",
    });
  });

  it("names missing and malformed headers", () => {
    expect(verifySlackSignature({ ...base, signatureHeader: undefined })).toEqual({
      ok: false,
      reason: "missing",
    });
    expect(verifySlackSignature({ ...base, timestampHeader: "" })).toEqual({ ok: false, reason: "missing" });
    expect(verifySlackSignature({ ...base, signatureHeader: [] })).toEqual({ ok: false, reason: "missing" });
    expect(verifySlackSignature({ ...base, timestampHeader: "12abc" })).toEqual({
      ok: false,
      reason: "malformed",
    });
    expect(verifySlackSignature({ ...base, signatureHeader: "v0=abc" })).toEqual({
      ok: false,
      reason: "malformed",
    });
    expect(verifySlackSignature({ ...base, signatureHeader: `v1=${SIG.slice(3)}` })).toEqual({
      ok: false,
      reason: "malformed",
    });
  });
});
