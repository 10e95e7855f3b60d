import { describe, expect, it } from "vitest";
import { episodeTransition, reasonOf, worstStatus } from "../../src/core/status.js";
import { STATUSES } from "../../src/core/types.js";

describe("status", () => {
  it("a connection is as bad as its worst credential", () => {
    expect(worstStatus([])).toBe("active");
    expect(worstStatus(["active", "refresh_failing"])).toBe("refresh_failing");
    expect(worstStatus(["refresh_failing", "needs_reauth", "active"])).toBe("needs_reauth");
  });

  it("emits needs_reauth once per episode: only when entering it", () => {
    expect(episodeTransition("active", "needs_reauth")).toBe("needs_reauth");
    expect(episodeTransition("refresh_failing", "needs_reauth")).toBe("needs_reauth");
    expect(episodeTransition(null, "needs_reauth")).toBe("needs_reauth");
    expect(episodeTransition("needs_reauth", "needs_reauth")).toBeNull();
  });

  it("emits recovered when leaving needs_reauth or refresh_failing for active", () => {
    expect(episodeTransition("needs_reauth", "active")).toBe("recovered");
    expect(episodeTransition("refresh_failing", "active")).toBe("recovered");
    expect(episodeTransition("active", "active")).toBeNull();
    expect(episodeTransition("active", "refresh_failing")).toBeNull();
    expect(episodeTransition("needs_reauth", "refresh_failing")).toBeNull();
    expect(episodeTransition(null, "active")).toBeNull();
    for (const s of STATUSES) expect(episodeTransition(s, null)).toBeNull();
  });

  it("records a stable reason for every classification", () => {
    expect(reasonOf({ kind: "refreshable", error: "token_expired" })).toBe("provider_unavailable");
    expect(reasonOf({ kind: "forbidden", reason: "missing_scope", error: "no_permission" })).toBe(
      "missing_scope",
    );
  });
});
