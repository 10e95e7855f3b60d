// During a Slack outage every token request for an expired token answers 503 provider_unavailable.
// The engine already logs each refresh attempt's failure; an error line with a stack per request on
// top of it buried the log in repeats of one condition that is Slack's, not ours.
import type { FastifyReply, FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import { ProviderUnavailableError, TokenwardenError } from "../../src/core/errors.js";
import { errorHandler } from "../../src/server/error-reply.js";

type Line = { level: string; obj: Record<string, unknown>; msg: string | undefined };

function requestRecording(): { request: FastifyRequest; lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (obj: Record<string, unknown>, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  const log = { error: at("error"), warn: at("warn"), info: at("info"), debug: at("debug") };
  return { request: { log } as unknown as FastifyRequest, lines };
}

function replyStub(): FastifyReply {
  const reply = {
    header: () => reply,
    code: () => reply,
    type: () => reply,
    send: () => reply,
  };
  return reply as unknown as FastifyReply;
}

describe("the error handler's log", () => {
  it("logs a provider outage relayed to a caller at info, without a stack, naming the code and reason", () => {
    const { request, lines } = requestRecording();
    const outage = new ProviderUnavailableError(
      "refreshing bot credential of T1 failed recently (http_500); next attempt in 30 s",
      "provider_unavailable",
      30_000,
      { providerError: "http_500" },
    );
    errorHandler(outage, request, replyStub());
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe("info");
    expect(lines[0]?.obj).toMatchObject({
      code: "provider_unavailable",
      reason: "provider_unavailable",
      detail: outage.message,
    });
    expect(JSON.stringify(lines[0]?.obj)).not.toContain("stack");
  });

  it("does the same for refused client credentials, which the engine reports once per process", () => {
    const { request, lines } = requestRecording();
    errorHandler(
      new TokenwardenError("provider_misconfigured", "slack refused our client credentials"),
      request,
      replyStub(),
    );
    expect(lines.map((l) => l.level)).toEqual(["info"]);
    expect(lines[0]?.obj).toMatchObject({ code: "provider_misconfigured" });
  });

  // The proxy's own call to Slack (not a refresh): nothing in the engine logs that it got no answer,
  // and at the default level (warn) an info line is dropped, so an egress, DNS or TLS failure that
  // fails every proxied call left the log empty.
  it("logs a proxied call Slack did not answer as a warning naming the transport error (nothing else logs it)", () => {
    const { request, lines } = requestRecording();
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED" });
    errorHandler(
      new ProviderUnavailableError(
        "Slack did not answer auth.test (connection_failed)",
        "provider_unavailable",
        null,
        { cause: refused, providerError: "connection_failed" },
      ),
      request,
      replyStub(),
    );
    expect(lines.map((l) => l.level)).toEqual(["warn"]);
    expect(lines[0]?.obj).toMatchObject({
      code: "provider_unavailable",
      cause: "connect ECONNREFUSED 127.0.0.1:9",
    });
    expect(JSON.stringify(lines[0]?.obj)).not.toContain("stack");
  });

  it("still logs our own failures (the store, a bug) as errors with their cause", () => {
    const { request, lines } = requestRecording();
    const down = new TokenwardenError("store_unavailable", "PostgreSQL query failed");
    errorHandler(down, request, replyStub());
    errorHandler(new Error("boom"), request, replyStub());
    expect(lines.map((l) => l.level)).toEqual(["error", "error"]);
    expect(lines[0]?.obj["err"]).toBe(down);
  });
});
