// What a request's URL looks like in the HTTP log: the query's keys, never its values.
import { describe, expect, it } from "vitest";
import { logSafeUrl } from "../../src/server/app.js";

describe("logSafeUrl", () => {
  it("keeps the path and the query's keys, and leaves every value out", () => {
    expect(logSafeUrl("/v1/connections")).toBe("/v1/connections");
    expect(logSafeUrl("/v1/proxy/T1/auth.test?token=xoxb-SECRET&channel=C1")).toBe(
      "/v1/proxy/T1/auth.test?token=…&channel=…",
    );
    expect(logSafeUrl("/oauth/slack/callback?code=SECRET&state=SECRET&")).toBe(
      "/oauth/slack/callback?code=…&state=…",
    );
  });

  it("shows nothing of a query part without '=' (it is all value)", () => {
    expect(logSafeUrl("/v1/proxy/T1/auth.test?xoxb-SECRET")).toBe("/v1/proxy/T1/auth.test?…");
    expect(logSafeUrl("/x?a=1&xoxb-SECRET&b=2")).toBe("/x?a=…&…&b=…");
    expect(logSafeUrl("/x?a=b=c")).toBe("/x?a=…");
  });
});
