import { describe, expect, it } from "vitest";
import type { NewEvent } from "../../src/core/types.js";
import { outboxRowOfEvent } from "../../src/store/outbox-records.js";

const failed = (data: Record<string, unknown>): NewEvent => ({
  connectionId: "T1",
  kind: "bot",
  type: "refresh_failed",
  reason: "provider_unavailable",
  atMs: Date.UTC(2026, 10, 22),
  data,
});

describe("outboxRowOfEvent", () => {
  it("announces the 1st, 2nd, 4th, 8th… transient failure in a row, not every one", () => {
    const announced = Array.from({ length: 40 }, (_, i) => i + 1).filter(
      (attempt) =>
        outboxRowOfEvent(failed({ error: "http_503", nextAttemptAtMs: 0, attempt }), "slack", "id") !== null,
    );
    expect(announced).toEqual([1, 2, 4, 8, 16, 32]);
  });

  it("always announces a failure without an attempt number (a refusal that killed the credential)", () => {
    const row = outboxRowOfEvent(failed({ error: "invalid_refresh_token" }), "slack", "wh-1");
    expect(row?.message).toMatchObject({
      id: "wh-1",
      type: "connection.refresh_failed",
      payload: { connection_id: "T1", error: "invalid_refresh_token", retry_at: null, attempt: null },
    });
  });

  it("carries the attempt number and the retry time", () => {
    const row = outboxRowOfEvent(
      failed({ error: "http_503", nextAttemptAtMs: Date.UTC(2026, 10, 22, 0, 1), attempt: 4 }),
      "slack",
      "wh-2",
    );
    expect(row?.message.payload).toMatchObject({ attempt: 4, retry_at: "2026-11-22T00:01:00.000Z" });
  });

  it("writes no webhook for events that are not announced", () => {
    expect(outboxRowOfEvent({ ...failed({}), type: "refreshed" }, "slack", "x")).toBeNull();
  });
});
