// connections.refresh rows, the finer points (from a second review): a row says what this call met,
// not an older stored error; a refresh stored before a failed flag lift is a row, not a throw.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { refusedClient } from "../helpers/store-fixtures.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("forced refresh rows on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("an expired credential held back by the provider's 429 pause says so (as a valid one does), not an older error of its own", async () => {
    h = await openEngineHarness(kind);
    const a = await h.installAndImport();
    const c = await h.installAndImport();
    const calls = () => h?.emu.control.counters().calls["oauth.v2.access"] ?? 0;
    h.clock.advance(11 * HOUR);
    // An earlier blip on C: refresh_failing with the 5xx as its lastError, token still valid.
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    await h.warden.getToken(c.id);
    const older = (await h.warden.connections.get(c.id)).credentials[0]?.lastError;
    expect(older).not.toBeNull();
    h.clock.advance(2 * HOUR); // both tokens have expired
    h.emu.control.fault("oauth.v2.access", { kind: "ratelimited", retryAfterSeconds: 60, times: 100 });
    await h.warden.getToken(a.id).catch(() => undefined); // the 429: every refresh of slack paused 60 s
    const sent = calls();
    const [row] = await h.warden.connections.refresh(c.id);
    expect(calls()).toBe(sent); // nothing was sent for C
    // What this forced refresh met is the provider's rate limit, not C's old 5xx.
    expect(row).toMatchObject({ refreshed: false, error: "ratelimited" });
  });
});

describe.each(STORE_KINDS)("a refresh stored, then the flag's lift fails, on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("connections.refresh reports the credential refreshed (its tokens are stored) rather than throwing the lift's store error", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport({ withUser: true });
    // A flag naming no credentials (or these): this process is held back, and its forced refresh is the probe.
    await h.store.setProviderState(refusedClient(h.clock.now()));
    let failLift = true;
    const store = interceptStore(await openSealedStore(kind, h.location, h.key), {
      liftProviderFlag: async (real, ...args) => {
        if (failLift) {
          failLift = false;
          throw new Error("connection reset while lifting the flag");
        }
        return real(...args);
      },
    });
    const w = await h.peer({ store });
    h.clock.advance(13 * HOUR);
    const before = await w.connections.get(id);
    const rows = await w.connections.refresh(id).catch((e: unknown) => e);
    const after = await w.connections.get(id);
    // The bot's new tokens were stored (its version moved) ...
    expect(after.credentials[0]?.refreshedAtMs).not.toBe(before.credentials[0]?.refreshedAtMs);
    // ... so the answer is rows, the bot's saying refreshed, not a throw that loses them.
    expect(rows instanceof Error ? rows.message : "rows").toBe("rows");
    expect((rows as Array<{ kind: string; refreshed: boolean }>)[0]).toMatchObject({
      kind: "bot",
      refreshed: true,
    });
  });
});

describe.each(STORE_KINDS)("a refusal the store fails to record on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("answers the refusal, holds the process back and announces it, without throwing the store's error", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    const store = interceptStore(await openSealedStore(kind, h.location, h.key), {
      setProviderState: async () => {
        throw new Error("connection reset while recording the flag");
      },
    });
    const bad = await h.peer({
      store,
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url },
      },
    });
    const raised: unknown[] = [];
    bad.on("provider_misconfigured", (e) => raised.push(e));
    const calls = () => h?.emu.control.counters().calls["oauth.v2.access"] ?? 0;
    const before = calls();
    // The token is still valid: the refusal is this credential's row, not the store's error.
    expect(await bad.connections.refresh(id)).toMatchObject([
      { refreshed: false, error: "bad_client_secret" },
    ]);
    expect(raised).toHaveLength(1);
    expect((await bad.providerState("slack")).appliesHere).toBe(true);
    // Held back all the same: the next forced refresh within the probe interval sends nothing.
    await bad.connections.refresh(id);
    expect(calls() - before).toBe(1);
    expect((await h.store.getProviderState("slack"))?.status ?? "ok").toBe("ok"); // nothing recorded
  });
});
