// markNeedsReauth with happenedAt, decided under the store's row lock: what it returns and announces
// is what it changed.
import { afterEach, describe, expect, it } from "vitest";
import type { WardenEventMap } from "../../src/engine/warden-events.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("markNeedsReauth on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("returns only the kinds it marked when one credential of 'all' was issued after happenedAt", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport({ withUser: true });
    const importedAt = h.clock.now();
    h.clock.advance(HOUR);
    // The bot credential is refreshed after the signal's instant; the user credential is not.
    await h.warden.connections.refresh(id, { kind: "bot" });
    const bot = (await h.warden.connections.get(id)).credentials.find((c) => c.kind === "bot");
    expect(bot?.refreshedAtMs).toBe(h.clock.now());
    const happenedAt = importedAt + 1_000; // after the user's issue, before the bot's refresh

    const marked = await h.warden.markNeedsReauth(id, "all", "app_uninstalled", { happenedAt });

    const c = await h.warden.connections.get(id);
    expect(c.credentials.find((k) => k.kind === "bot")?.status).toBe("active");
    expect(c.credentials.find((k) => k.kind === "user")?.status).toBe("needs_reauth");
    // README: "returns the kinds it marked"
    expect(marked).toEqual(["user"]);
  });

  it("the needs_reauth emission names the one credential it marked, as the stored episode event does", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport({ withUser: true });
    const importedAt = h.clock.now();
    h.clock.advance(HOUR);
    await h.warden.connections.refresh(id, { kind: "bot" });
    const heard: WardenEventMap["needs_reauth"][] = [];
    h.warden.on("needs_reauth", (e) => heard.push(e));

    await h.warden.markNeedsReauth(id, "all", "app_uninstalled", { happenedAt: importedAt + 1_000 });

    const stored = (await h.warden.connections.events(id)).filter((e) => e.type === "needs_reauth");
    expect(stored.map((e) => e.kind)).toEqual(["user"]);
    expect(heard.map((e) => e.kind)).toEqual(["user"]);
  });
});
