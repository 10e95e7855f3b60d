// A refresh whose claim is cleared or taken over while its provider call is in flight (a reconnect in
// another process, a peer that took over a lapsed lease) records nothing, and its caller is answered
// from the store as it is now: never with the replaced token, nor with a verdict about it. Runs on both
// stores, against the emulator over HTTP.
import { afterEach, describe, expect, it } from "vitest";
import type { Warden } from "../../src/engine/warden.js";
import { type EngineHarness, grantTokens, openEngineHarness } from "../helpers/engine-harness.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

/** A fetch that holds each request until the test lets it go, then sends it to the emulator. */
function gatedFetch() {
  const held: Array<() => void> = [];
  let arrived: () => void = () => {};
  return {
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      await new Promise<void>((release) => {
        held.push(release);
        arrived();
      });
      return fetch(input, init);
    }) as typeof fetch,
    /** Resolves once `n` requests are being held in all. */
    async requests(n: number): Promise<void> {
      while (held.length < n) await new Promise<void>((r) => (arrived = r));
    },
    release(i: number): void {
      held[i]?.();
    },
  };
}

const outcome = (p: Promise<{ accessToken: string }>) =>
  p.then(
    (t) => ({ token: t.accessToken }),
    (e: { code?: string; reason?: string }) => ({ error: e.code, reason: e.reason }),
  );

describe.each(STORE_KINDS)("fenced-out refresh outcomes on %s", (kind) => {
  let h: EngineHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  /** The workspace reinstalled and the new tokens imported by another process, as a reconnect does. */
  async function reconnect(h: EngineHarness, id: string, peer: Warden): Promise<string> {
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: id });
    const install = h.emu.control.reinstall({
      clientId: h.emu.demoApp.clientId,
      teamId: id,
      botScopes: ["chat:write"],
    });
    await peer.connections.import({
      id,
      provider: "slack",
      credentials: { bot: grantTokens(install) },
    });
    return String(install["access_token"]);
  }

  it("a refusal of the replaced refresh token does not tell the caller to reconnect the connection just reconnected", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    const gate = gatedFetch();
    const a = await h.peer({ fetch: gate.fetch });
    const needsReauth: unknown[] = [];
    a.on("needs_reauth", (e) => needsReauth.push(e));
    h.clock.advance(12 * HOUR + 1); // expired: the caller waits for the refresh
    const pending = outcome(a.getToken(id));
    await gate.requests(1);
    const reconnected = await reconnect(h, id, h.warden);
    gate.release(0); // the old refresh token reaches the emulator after the uninstall: refused
    expect(await pending).toEqual({ token: reconnected });
    const stored = await h.warden.connections.get(id);
    expect(stored.status).toBe("active");
    expect(needsReauth).toEqual([]);
    // Nothing about the replaced token was recorded against the new one.
    expect((await h.warden.connections.events(id)).map((e) => e.type)).not.toContain("refresh_failed");
  });

  it("a transient failure about the replaced token hands out the store's new token, not the replaced one", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    const gate = gatedFetch();
    const a = await h.peer({ fetch: gate.fetch });
    h.clock.advance(11 * HOUR); // inside the refresh margin, the old token not yet expired
    const pending = outcome(a.getToken(id, { minTtlSeconds: 1 }));
    await gate.requests(1);
    const reconnected = await reconnect(h, id, h.warden);
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    gate.release(0);
    expect(await pending).toEqual({ token: reconnected });
    expect((await h.warden.connections.get(id)).credentials[0]?.failureCount).toBe(0);
  });

  it("an answer that arrives after a peer took over the lapsed lease waits for the peer's outcome", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    const gate = gatedFetch();
    // A's heartbeats cannot get through: its lease lapses while its provider call is in flight.
    const deaf = interceptStore(await openSealedStore(kind, h.location, h.key), {
      renewClaim: async () => {
        throw new Error("heartbeat connection down");
      },
    });
    const a = await h.peer({ store: deaf, fetch: gate.fetch });
    const b = await h.peer({ fetch: gate.fetch });
    h.clock.advance(12 * HOUR + 1);
    const fromA = outcome(a.getToken(id));
    await gate.requests(1);
    h.clock.advance(6_000); // past A's 5 s lease: B takes over and presents the same refresh token
    const fromB = outcome(b.getToken(id));
    await gate.requests(2);
    gate.release(0); // A's answer: a valid pair, but A no longer holds the claim
    await new Promise((r) => setTimeout(r, 50));
    gate.release(1); // B's answer (the emulator's grace period honours the second presentation)
    const [resultA, resultB] = await Promise.all([fromA, fromB]);
    expect(resultB).toHaveProperty("token");
    expect(resultA).toEqual(resultB); // A's caller gets what the store kept, not needs_reauth
    const stored = await h.warden.getToken(id);
    expect(stored.accessToken).toBe((resultB as { token: string }).token);
  });

  it("an answer that arrives after another process deleted the connection stores nothing and says not_found", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    const gate = gatedFetch();
    const a = await h.peer({ fetch: gate.fetch });
    h.clock.advance(12 * HOUR + 1);
    const pending = outcome(a.getToken(id));
    await gate.requests(1);
    await h.warden.connections.delete(id);
    gate.release(0); // the emulator rotates; the claim it answers no longer exists
    expect(await pending).toMatchObject({ error: "not_found" });
    expect((await h.warden.connections.list()).items).toEqual([]);
  });
});
