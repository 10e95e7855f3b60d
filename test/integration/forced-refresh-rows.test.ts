// connections.refresh answers one row per credential whatever happens to each: a credential whose
// refresh fails after its access token has expired is a row saying so, not a throw that loses the
// rows of the credentials refreshed (and stored) before it.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("a forced refresh of several credentials on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("reports the bot's new token and the user's death, both expired before", async () => {
    h = await openEngineHarness(kind);
    const { id, install } = await h.installAndImport({ withUser: true });
    const user = install["authed_user"] as Record<string, unknown>;
    h.emu.control.revokeToken(String(user["refresh_token"]));
    h.clock.advance(13 * HOUR); // both access tokens have expired
    const rows = await h.warden.connections.refresh(id);
    expect(rows.map((r) => [r.kind, r.refreshed, r.error])).toEqual([
      ["bot", true, null],
      ["user", false, "invalid_refresh_token"],
    ]);
    const bot = rows[0]?.expiresAt?.getTime() ?? 0;
    expect(bot).toBeGreaterThan(h.clock.now());
    const c = await h.warden.connections.get(id);
    expect(c.credentials.map((x) => [x.kind, x.status])).toEqual([
      ["bot", "active"],
      ["user", "needs_reauth"],
    ]);
  });

  it("reports an outage on an expired credential as a row, the token's expiry as stored", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    h.clock.advance(13 * HOUR);
    const before = (await h.warden.connections.get(id)).credentials[0]?.expiresAtMs ?? null;
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    const [row] = await h.warden.connections.refresh(id, { kind: "bot" });
    expect(row).toMatchObject({ kind: "bot", refreshed: false });
    expect(row?.error).toEqual(expect.any(String));
    expect(row?.expiresAt?.getTime() ?? null).toBe(before);
    expect((await h.warden.connections.get(id)).status).toBe("refresh_failing");
  });

  it("still throws what is not about the credential: an unknown connection", async () => {
    h = await openEngineHarness(kind);
    await expect(h.warden.connections.refresh("T-none")).rejects.toMatchObject({ code: "not_found" });
  });
});
