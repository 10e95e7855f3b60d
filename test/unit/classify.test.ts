import { describe, expect, it } from "vitest";
import {
  classifyOAuth2Error,
  classifyTransportError,
  parseRetryAfter,
  safeErrorCode,
} from "../../src/core/classify.js";

describe("classifyOAuth2Error (RFC 6749 §5.2)", () => {
  it("invalid_grant is dead", () => {
    expect(classifyOAuth2Error("invalid_grant", 400)).toEqual({
      kind: "dead",
      reason: "invalid_grant",
      error: "invalid_grant",
    });
  });

  it("client errors flag the provider, not the connection", () => {
    for (const code of ["invalid_client", "unauthorized_client", "unsupported_grant_type"]) {
      expect(classifyOAuth2Error(code, 400)).toEqual({
        kind: "misconfigured",
        reason: "provider_misconfigured",
        error: code,
      });
    }
    expect(classifyOAuth2Error(undefined, 401).kind).toBe("misconfigured");
  });

  it("429, 5xx and unknown codes are transient, never dead", () => {
    expect(classifyOAuth2Error("invalid_grant", 429, 5_000)).toEqual({
      kind: "transient",
      reason: "rate_limited",
      error: "invalid_grant",
      retryAfterMs: 5_000,
    });
    expect(classifyOAuth2Error(undefined, 503)).toEqual({
      kind: "transient",
      reason: "provider_unavailable",
      error: "http_503",
    });
    for (const code of ["something_new", "constructor", "__proto__", "toString", 42, null]) {
      expect(classifyOAuth2Error(code, 400).kind).toBe("transient");
    }
  });

  it("never lets an odd error string through", () => {
    expect(safeErrorCode("ya29.a0AfH6SMBx secret token")).toBe("unrecognized_error");
    expect(classifyOAuth2Error("Bearer abc.def ghi", 400).error).toBe("unrecognized_error");
    expect(safeErrorCode("x".repeat(65))).toBe("unrecognized_error");
  });
});

describe("parseRetryAfter", () => {
  it("reads delay-seconds and HTTP-dates", () => {
    expect(parseRetryAfter("30", 0)).toBe(30_000);
    expect(parseRetryAfter(" 0 ", 0)).toBe(0);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", Date.UTC(2015, 9, 21, 7, 27, 0))).toBe(60_000);
    expect(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", Date.UTC(2016, 0, 1))).toBe(0);
    expect(parseRetryAfter("soon", 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });
});

describe("classifyTransportError", () => {
  const fetchFailed = (cause: unknown) => Object.assign(new TypeError("fetch failed"), { cause });

  it("says a refused connection or a DNS failure never reached the provider", () => {
    for (const code of ["ECONNREFUSED", "ENOTFOUND", "UND_ERR_CONNECT_TIMEOUT"]) {
      const r = classifyTransportError(fetchFailed(Object.assign(new Error(code), { code })), false);
      expect(r).toEqual({
        classification: { kind: "transient", reason: "provider_unavailable", error: code },
        mayHaveReachedProvider: false,
      });
    }
    const aggregate = Object.assign(
      new AggregateError([Object.assign(new Error("x"), { code: "ECONNREFUSED" })]),
      {},
    );
    expect(classifyTransportError(fetchFailed(aggregate), false).mayHaveReachedProvider).toBe(false);
  });

  it("says timeouts, aborts, resets and the unknown may have reached it", () => {
    const timeout = new DOMException("timed out", "TimeoutError");
    expect(classifyTransportError(timeout, true)).toEqual({
      classification: { kind: "transient", reason: "provider_unavailable", error: "timeout" },
      mayHaveReachedProvider: true,
    });
    expect(classifyTransportError(new DOMException("aborted", "AbortError"), true).classification.error).toBe(
      "aborted",
    );
    const reset = fetchFailed(Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }));
    expect(classifyTransportError(reset, false).mayHaveReachedProvider).toBe(true);
    expect(classifyTransportError(new Error("weird"), false)).toEqual({
      classification: { kind: "transient", reason: "provider_unavailable", error: "network_error" },
      mayHaveReachedProvider: true,
    });
  });
});
