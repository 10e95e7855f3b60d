// A refresh whose tokens Slack issued before an uninstall, though its answer arrived after the
// event's second: its tokens are dated when the request was sent, so the late event still marks them.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("uninstall racing a refresh on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a token Slack issued before the uninstall is marked, though its answer arrived after the event's second", async () => {
    let onRefreshAnswered: (() => void) | null = null;
    const slowFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const url = String(input instanceof Request ? input.url : input);
      if (url.includes("oauth.v2.access") && onRefreshAnswered !== null) {
        const hook = onRefreshAnswered;
        onRefreshAnswered = null;
        hook();
      }
      return response;
    };
    h = await openEngineHarness(kind);
    const harness = h;
    const { id } = await harness.installAndImport();
    harness.clock.advance(11 * HOUR);
    const refresher = await harness.peer({ fetch: slowFetch });

    let happenedAt = 0;
    onRefreshAnswered = () => {
      // Slack has issued the new pair; then the workspace uninstalls the app (every token dies, the
      // new pair too) ...
      harness.emu.control.uninstall({ clientId: harness.emu.demoApp.clientId, teamId: id });
      const eventTimeSeconds = Math.floor(harness.clock.now() / 1000);
      happenedAt = (eventTimeSeconds + 1) * 1000; // as src/server/slack-events.ts computes it
      // ... and the refresh's answer takes a slow network 2 s to come back.
      harness.clock.advance(2_000);
    };
    const [result] = await refresher.connections.refresh(id);
    expect(result?.refreshed).toBe(true);
    // The new pair really is dead at Slack.
    const stored = await harness.store.getCredential({ connectionId: id, kind: "bot" });
    const info = harness.emu.control.tokenInfo(stored?.accessToken.reveal() ?? "");
    expect(info.error).not.toBeNull();
    expect(info.issuedAtMs).toBeLessThan(happenedAt); // Slack issued it before the event

    const marked = await harness.warden.markNeedsReauth(id, "all", "app_uninstalled", { happenedAt });

    const bot = (await harness.warden.connections.get(id)).credentials.find((c) => c.kind === "bot");
    expect(marked).toEqual(["bot"]);
    expect(bot?.status).toBe("needs_reauth");
  });
});
