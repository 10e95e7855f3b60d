// No token (old or rotated) in stored events, emitted events, error messages or logs.
import { afterEach, describe, expect, it } from "vitest";
import { NeedsReauthError, ProviderUnavailableError } from "../../src/core/errors.js";
import type { WardenEventMap } from "../../src/engine/warden-events.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;
const EVENT_NAMES: (keyof WardenEventMap)[] = [
  "needs_reauth",
  "recovered",
  "refreshed",
  "refresh_failed",
  "provider_misconfigured",
  "provider_recovered",
];

describe.each(STORE_KINDS)("no token in events or errors on %s", (kind) => {
  let h: EngineHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("keeps rotated refresh tokens out of the event log, emitted events and error messages", async () => {
    h = await openEngineHarness(kind);
    const { id, install } = await h.installAndImport();
    const emitted: unknown[] = [];
    for (const name of EVENT_NAMES) h.warden.on(name, (e) => emitted.push({ name, e }));
    const secrets = new Set<string>([install["access_token"] as string, install["refresh_token"] as string]);
    const remember = async () => {
      const c = await h?.store.getCredential({ connectionId: id, kind: "bot" });
      if (!c) return;
      secrets.add(c.accessToken.reveal());
      if (c.refreshToken) secrets.add(c.refreshToken.reveal());
    };
    const errors: unknown[] = [];

    h.clock.advance(11 * HOUR);
    await h.warden.getToken(id); // rotation: a new refresh token is stored
    await remember();
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    h.clock.advance(12 * HOUR + 1); // expired, and the refresh fails transiently: an error reaches the caller
    errors.push(await h.warden.getToken(id).catch((e: unknown) => e));
    expect(errors.at(-1)).toBeInstanceOf(ProviderUnavailableError);
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: id });
    h.clock.advance(HOUR); // past the backoff: the refresh is refused for good
    errors.push(await h.warden.getToken(id).catch((e: unknown) => e));
    expect(errors.at(-1)).toBeInstanceOf(NeedsReauthError);

    const places = {
      eventLog: JSON.stringify(await h.warden.connections.events(id)),
      emitted: JSON.stringify(emitted),
      errors: errors.map((e) => `${String(e)} ${(e as Error).message} ${JSON.stringify(e)}`).join("\n"),
      logs: h.logs.join("\n"),
    };
    expect(secrets.size).toBe(4);
    for (const s of secrets)
      for (const [where, text] of Object.entries(places)) expect(text, where).not.toContain(s);
  });
});
