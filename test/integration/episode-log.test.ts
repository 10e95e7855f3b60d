// A connection dying is what the operator must see in the log. Only a refused refresh logged it:
// one that died through a health check, a proxied call (withToken) or a Slack event (markNeedsReauth)
// left no line at warn at all, and its reconnect none at info, so the log contradicted the webhooks.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { botFromInstall } from "../server/server-harness.js";

type Line = { level: string; msg?: string; connectionId?: string; reason?: string; kind?: string | null };

function linesAbout(h: EngineHarness, id: string, msg: string): Line[] {
  return h.logs
    .map((l) => JSON.parse(l) as Line)
    .filter((l) => l.connectionId === id && l.msg?.includes(msg) === true);
}

describe("the log of a connection's episodes", () => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("warns once when a health check finds the credential dead, naming connection, kind and reason", async () => {
    h = await openEngineHarness("sqlite");
    const { id } = await h.installAndImport();
    const { accessToken } = await h.warden.getToken(id);
    h.emu.control.leakToken(accessToken);

    await h.warden.connections.check(id);
    await h.warden.connections.check(id);

    const lines = linesAbout(h, id, "needs re-authorization");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "warn", connectionId: id, kind: "bot", reason: "token_revoked" });
  });

  it("warns when an outside signal kills it, and says at info when a reconnect brings it back", async () => {
    h = await openEngineHarness("sqlite");
    const { id, install } = await h.installAndImport();

    await h.warden.markNeedsReauth(id, "all", "app_uninstalled");
    expect(linesAbout(h, id, "needs re-authorization")).toEqual([
      expect.objectContaining({ level: "warn", reason: "app_uninstalled" }),
    ]);

    await h.warden.connections.import({
      id,
      provider: "slack",
      credentials: { bot: botFromInstall(install as { access_token?: string; refresh_token?: string }) },
    });
    expect(linesAbout(h, id, "recovered")).toEqual([expect.objectContaining({ level: "info", kind: "bot" })]);
  });
});
