// Every Slack error code the classifier knows, answered by the emulator over HTTP to a real refresh
// and acted on by the engine (DESIGN.md invariant 4: classify, then act). The table itself is unit
// tested; this proves the engine does with each class what the README says, end to end: dead kills
// the connection with the code's reason and nothing else, misconfigured flags the provider and
// changes no connection, anything else (transient, forbidden, refreshable, an unknown code) backs off
// and never kills.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SLACK_ERRORS } from "../../src/providers/slack/slack-errors.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

type Rule = (typeof SLACK_ERRORS)[keyof typeof SLACK_ERRORS];
const codes = (Object.entries(SLACK_ERRORS) as Array<[string, Rule]>).filter(
  ([code]) => code !== "ratelimited", // a body-only 429 pauses the provider: tested with the pauses
);
const dead = codes.filter(([, r]) => r.kind === "dead");
const misconfigured = codes.filter(([, r]) => r.kind === "misconfigured");
const survivable = [
  ...codes.filter(([, r]) => r.kind !== "dead" && r.kind !== "misconfigured"),
  ["ekm_access_denied", { kind: "unknown" }] as const, // a code the table does not know
];

describe.each(STORE_KINDS)("Slack's refresh answers, acted on end to end (%s)", (kind) => {
  let h: EngineHarness;
  beforeEach(async () => {
    h = await openEngineHarness(kind);
  });
  afterEach(async () => {
    await h.close();
  });

  /** A fresh connection whose next refresh Slack answers with `code` (the call not run). */
  async function refreshAnswered(code: string): Promise<string> {
    const { id } = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "error", error: code, times: 1 });
    await h.warden.connections.refresh(id).catch(() => undefined);
    return id;
  }

  it("a dead answer kills the connection with that code's reason, and spends nothing", async () => {
    expect(dead.length).toBeGreaterThanOrEqual(6);
    for (const [code, rule] of dead) {
      const id = await refreshAnswered(code);
      const c = await h.warden.connections.get(id);
      expect({ code, status: c.status, reason: c.reason }).toEqual({
        code,
        status: "needs_reauth",
        reason: "reason" in rule ? rule.reason : null,
      });
    }
    expect(h.emu.control.counters().refreshes).toBe(0);
    expect((await h.warden.providerState("slack")).status).toBe("ok");
  });

  it("any other answer backs off and leaves the connection alive, the provider unflagged", async () => {
    for (const [code] of survivable) {
      const id = await refreshAnswered(code);
      const c = await h.warden.connections.get(id);
      expect({ code, status: c.status }).toEqual({ code, status: "refresh_failing" });
      expect((await h.warden.providerState("slack")).status).toBe("ok");
    }
  });

  it.each(misconfigured.map(([code]) => code))(
    "%s flags the provider and changes no connection",
    async (code) => {
      const id = await refreshAnswered(code);
      expect((await h.warden.connections.get(id)).status).toBe("active");
      expect(await h.warden.providerState("slack")).toMatchObject({
        status: "misconfigured",
        lastError: code,
      });
    },
  );
});
