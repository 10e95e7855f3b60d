import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { NeedsReauthError, ProviderUnavailableError, TokenwardenError } from "../../src/core/errors.js";
import { deriveKeyId } from "../../src/crypto/key-ring.js";
import { describeEvent } from "../../src/diagnose/explain-connection.js";
import { cryptoRandom } from "../../src/engine/crypto-random.js";
import type { Warden } from "../../src/engine/warden.js";
import type { WardenEventMap } from "../../src/engine/warden-events.js";
import {
  authTest,
  type EngineHarness,
  FAST_TIMINGS,
  grantTokens,
  importLongerThanSlack,
  openEngineHarness,
} from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { completionGate, interceptStore } from "../helpers/intercept-store.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

/** Moves our clock and the emulator's together (they share it). */
function advance(h: EngineHarness, ms: number): void {
  h.clock.advance(ms);
}

function collect<E extends keyof WardenEventMap>(h: EngineHarness, name: E): WardenEventMap[E][] {
  const seen: WardenEventMap[E][] = [];
  h.warden.on(name, (e) => seen.push(e));
  return seen;
}

describe.each(STORE_KINDS)("engine on %s", (kind) => {
  let h: EngineHarness;
  beforeEach(async () => {
    h = await openEngineHarness(kind);
  });
  afterEach(async () => {
    await h.close();
  });

  it("serves a valid token from memory after the first read", async () => {
    const { id, install } = await h.installAndImport();
    const first = await h.warden.getToken(id);
    const second = await h.warden.getToken(id, { kind: "bot" });
    expect(first.accessToken).toBe(install["access_token"]);
    expect(second.accessToken).toBe(first.accessToken);
    expect(first.kind).toBe("bot");
    expect(first.expiresAt?.getTime()).toBe(h.clock.now() + 43_200_000);
    // On PostgreSQL the import's own NOTIFY may land after the first read and move the stamp once;
    // after that, reads are served from memory.
    await eventually(
      async () => {
        await h.warden.getToken(id);
        return h.warden.stats().hits;
      },
      (hits) => hits >= 1,
      { what: "a cache hit" },
    );
    expect(h.emu.control.counters().refreshes).toBe(0);
  });

  it("refreshes ahead of expiry, once, and persists the rotated refresh token", async () => {
    const { id, install } = await h.installAndImport();
    advance(h, 11 * HOUR); // inside the 2 h margin of a 12 h token
    const fresh = await h.warden.getToken(id);
    expect(fresh.accessToken).not.toBe(install["access_token"]);
    expect((await authTest(h, fresh.accessToken))["ok"]).toBe(true);
    advance(h, 11 * HOUR); // the second rotation uses the refresh token the first one stored
    const again = await h.warden.getToken(id);
    expect(again.accessToken).not.toBe(fresh.accessToken);
    const counters = h.emu.control.counters();
    expect(counters.refreshes).toBe(2);
    expect(counters.maxPresentations).toBe(1);
    expect(counters.invalidRefreshTokenAnswers).toBe(0);
    const types = (await h.warden.connections.events(id)).map((e) => e.type);
    expect(types.filter((t) => t === "refreshed")).toHaveLength(2);
  });

  it("does not serve a cached token once it is inside its refresh margin", async () => {
    const { id, install } = await h.installAndImport();
    expect((await h.warden.getToken(id)).accessToken).toBe(install["access_token"]); // cached now
    advance(h, 11 * HOUR); // no store change, only time: the cache itself must notice
    expect((await h.warden.getToken(id)).accessToken).not.toBe(install["access_token"]);
    expect(h.emu.control.counters().refreshes).toBe(1);
  });

  it("cachedToken answers from memory only: null until read, after another process writes, inside the margin", async () => {
    const { id, install } = await h.installAndImport();
    expect(h.warden.cachedToken(id)).toBeNull(); // never read in this process: its kind is not even known
    await eventually(
      async () => {
        await h.warden.getToken(id);
        return h.warden.cachedToken(id, { kind: "bot", minTtlSeconds: 60 });
      },
      (t) => t !== null,
      { what: "a cached token" },
    );
    expect(h.warden.cachedToken(id)?.accessToken).toBe(install["access_token"]);
    expect(h.warden.cachedToken(id, { kind: "user" })).toBeNull(); // no user credential
    // Another process replaces the token: memory must stop answering with the old one.
    const peer = await h.peer();
    await peer.connections.import({
      id,
      provider: "slack",
      credentials: { bot: { accessToken: "xoxe.xoxb-replaced", expiresIn: 43_200 } },
    });
    await eventually(
      async () => h.warden.cachedToken(id),
      (t) => t === null,
      { what: "memory to drop the replaced token" },
    );
    expect((await h.warden.getToken(id)).accessToken).toBe("xoxe.xoxb-replaced");
    advance(h, 11 * HOUR); // a token without a refresh token is served to its end...
    expect(h.warden.cachedToken(id)?.accessToken).toBe("xoxe.xoxb-replaced");
    advance(h, HOUR); // ...and not past it
    expect(h.warden.cachedToken(id)).toBeNull();
    expect(h.emu.control.counters().refreshes).toBe(0); // memory never refreshes
  });

  it("cachedToken never throws, even after close()", async () => {
    const { id } = await h.installAndImport();
    const peer = await h.peer();
    await peer.getToken(id);
    await peer.close();
    await new Promise((resolve) => setTimeout(resolve, 5)); // past the stamp's 1 ms freshness
    expect(() => peer.cachedToken(id)).not.toThrow();
    expect(peer.cachedToken(id)).toBeNull();
  });

  it("coalesces concurrent callers in one process into one refresh", async () => {
    const { id } = await h.installAndImport();
    advance(h, 12 * HOUR + 1);
    const tokens = await Promise.all(Array.from({ length: 50 }, () => h.warden.getToken(id)));
    expect(new Set(tokens.map((t) => t.accessToken)).size).toBe(1);
    expect(h.emu.control.counters().refreshes).toBe(1);
  });

  it("a second process re-reads the winner's token instead of spending the refresh token again", async () => {
    const { id } = await h.installAndImport();
    const peer = await h.peer();
    await peer.getToken(id); // warm its cache with the old token
    advance(h, 11 * HOUR);
    const a = await h.warden.getToken(id);
    const b = await peer.getToken(id);
    expect(b.accessToken).toBe(a.accessToken);
    expect(h.emu.control.counters().refreshes).toBe(1);
  });

  it("withToken refreshes once on token_expired and retries once", async () => {
    const { id, install } = await h.installAndImport();
    await importLongerThanSlack(h, id, install); // the first call meets token_expired
    advance(h, 12 * HOUR + 1);
    const seen: string[] = [];
    const body = await h.warden.withToken(id, async (token) => {
      seen.push(token);
      return authTest(h, token);
    });
    expect(body["ok"]).toBe(true);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(install["access_token"]);
    expect(h.emu.control.counters().refreshes).toBe(1);
  });

  it("withToken does not call again with the expired token when the refresh fails: provider_unavailable", async () => {
    const { id, install } = await h.installAndImport();
    await importLongerThanSlack(h, id, install);
    advance(h, 12 * HOUR + 1);
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    const seen: string[] = [];
    const err = await h.warden
      .withToken(id, async (token) => {
        seen.push(token);
        return authTest(h, token);
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).reason).toBe("provider_unavailable");
    expect(seen).toEqual([install["access_token"]]); // once: Slack had called it expired
    expect((await h.warden.connections.get(id)).status).toBe("refresh_failing");
    // The next call refreshes and succeeds.
    const body = await h.warden.withToken(id, (token) => authTest(h, token));
    expect(body["ok"]).toBe(true);
  });

  it("withToken does not call again with the same token when there is no refresh token to spend", async () => {
    const { id, install } = await h.installAndImport();
    // Imported without its refresh token, and as lasting longer than Slack says: past Slack's 12 h the
    // call meets token_expired while ours still counts it valid, and no refresh can bring another.
    await h.warden.connections.import({
      id,
      provider: "slack",
      credentials: { bot: { accessToken: install["access_token"] as string, expiresIn: 86_400 } },
    });
    advance(h, 12 * HOUR + 1);
    const seen: string[] = [];
    const body = await h.warden.withToken(id, async (token) => {
      seen.push(token);
      return authTest(h, token);
    });
    expect(body).toMatchObject({ ok: false, error: "token_expired" });
    expect(seen).toEqual([install["access_token"]]);
  });

  it("concurrent withToken callers forced to refresh after a hang send the refresh token once", async () => {
    const { id, install } = await h.installAndImport();
    await importLongerThanSlack(h, id, install); // ours says valid; Slack's clock below says expired
    h.emu.control.advance(12 * 3_600 + 1);
    h.emu.control.resetCounters();
    h.emu.control.fault("oauth.v2.access", { kind: "hang", times: 1, hangMs: 4_000 }); // past the timeout
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, () => h.warden.withToken(id, (token) => authTest(h, token))),
    );
    // One forced attempt (it hung); the callers that waited for it take its outcome, not a turn each.
    expect(h.emu.control.counters().calls["oauth.v2.access"]).toBe(1);
    for (const r of results) {
      expect(r.status).toBe("rejected");
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ProviderUnavailableError);
    }
  });

  it("a dead answer to a call through withToken kills the credential, and its event says an API call was refused", async () => {
    const { id } = await h.installAndImport();
    const body = await h.warden.withToken(id, async (token) => {
      h.emu.control.revokeToken(token);
      return authTest(h, token);
    });
    expect(body).toMatchObject({ ok: false, error: "token_revoked" });
    expect(await h.warden.connections.get(id)).toMatchObject({
      status: "needs_reauth",
      reason: "token_revoked",
    });
    const checked = (await h.warden.connections.events(id)).find((e) => e.type === "checked");
    expect(checked?.data).toMatchObject({ error: "token_revoked", source: "api_call" });
    // The timeline (connections show, diagnose connection) says what happened, not "health check".
    expect(checked === undefined ? "" : describeEvent(checked)).toBe(
      "an API call with the token was refused: token_revoked",
    );
  });

  it("a dead answer to a token replaced meanwhile does not kill the credential's current token", async () => {
    const { id } = await h.installAndImport();
    const peer = await h.peer();
    const body = await h.warden.withToken(id, async (token) => {
      // While this call is on its way: another process rotates the credential, and Slack revokes the
      // superseded token this caller still holds.
      await peer.connections.refresh(id);
      h.emu.control.revokeToken(token);
      return authTest(h, token);
    });
    expect(body).toMatchObject({ ok: false, error: "token_revoked" });
    const current = await h.warden.connections.get(id);
    expect(current.status).toBe("active");
    expect((await authTest(h, (await peer.getToken(id)).accessToken))["ok"]).toBe(true);
  });

  /**
   * `w.withToken` whose first call finds its token replaced on its way (another process rotates the
   * credential, and Slack revokes this caller's token): the answer, the tokens used, the stored one.
   */
  async function replacedOnItsWay(w: Warden, id: string) {
    const peer = await h.peer();
    const used: string[] = [];
    const body = await w.withToken(id, async (token) => {
      used.push(token);
      if (used.length === 1) {
        await peer.connections.refresh(id);
        h.emu.control.revokeToken(token);
      }
      return authTest(h, token);
    });
    return { body, used, stored: (await peer.getToken(id)).accessToken };
  }

  it("a dead answer to a token replaced meanwhile is retried once with the stored token", async () => {
    const { id } = await h.installAndImport();
    const { body, used, stored } = await replacedOnItsWay(h.warden, id);
    expect(body).toMatchObject({ ok: true });
    expect(used).toHaveLength(2);
    expect(used[1]).toBe(stored);
    expect((await h.warden.connections.get(id)).status).toBe("active");
  });

  it("a dead answer to a token replaced meanwhile is retried with the stored token before this process has heard of the change", async () => {
    const { id } = await h.installAndImport();
    // This process hears of other processes' changes late (a notification still on its way): its
    // change stamp stands still, so memory alone would keep the replaced token.
    const deaf = interceptStore(await openSealedStore(kind, h.location, h.key), {
      changeStamp: () => 1,
    });
    const w = await h.peer({ store: deaf });
    const { body, used, stored } = await replacedOnItsWay(w, id);
    expect(body).toMatchObject({ ok: true });
    expect(used).toHaveLength(2);
    expect(used[1]).toBe(stored);
    await w.close();
  });

  it("after a retry with the replaced token, a dead answer on a stored token in doubt still refreshes first", async () => {
    const { id } = await h.installAndImport();
    const peer = await h.peer();
    const used: string[] = [];
    await h.warden.withToken(id, async (token) => {
      used.push(token);
      if (used.length > 1) return authTest(h, token);
      // Meanwhile another process rotates, then two of its refreshes lose their answers: Slack minted
      // two tokens the store never heard of and revoked the stored one; its refresh token still works.
      await peer.connections.refresh(id);
      h.emu.control.fault("oauth.v2.access", { kind: "lost_response", times: 2 });
      await peer.connections.refresh(id);
      await peer.connections.refresh(id);
      const stored = await peer.connections.get(id);
      expect(stored.credentials[0]?.status).not.toBe("needs_reauth");
      return { ok: false, error: "token_revoked" }; // this caller's own, replaced token
    });
    // The retry with the stored token was refused too, but that token's refresh was in doubt: it was
    // refreshed and judged again, not believed dead.
    expect(used).toHaveLength(3);
    expect((await authTest(h, used[2] ?? ""))["ok"]).toBe(true);
    expect((await h.warden.connections.get(id)).status).toBe("active");
  });

  it("delete with revoke waits for a refresh in flight elsewhere and revokes the tokens it brought", async () => {
    const { id } = await h.installAndImport();
    // Another process whose refresh has been answered (new tokens minted) but is not stored yet.
    const gate = completionGate();
    const gated = interceptStore(await openSealedStore(kind, h.location, h.key), {
      completeRefreshes: gate.completeRefreshes,
    });
    const peer = await h.peer({ store: gated });
    advance(h, 11 * HOUR);
    const refreshing = peer.getToken(id);
    await eventually(
      () => h.emu.control.counterTotals().refreshes,
      (n) => n === 1,
      { what: "the provider to answer the peer" },
    );
    const deleting = h.warden.connections.delete(id, { revoke: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    gate.open();
    const [token, deleted] = await Promise.all([refreshing, deleting]);
    expect(deleted).toEqual({ deleted: true, revoked: [{ kind: "bot", ok: true }] });
    // The tokens the peer's refresh brought are revoked too: none outlives the delete at Slack.
    expect(h.emu.control.tokenInfo(token.accessToken)).toMatchObject({ state: "revoked" });
    await expect(h.warden.connections.get(id)).rejects.toMatchObject({ code: "not_found" });
  });

  it("a delete with revoke whose delete fails hands its claims back and says so", async () => {
    const { id } = await h.installAndImport();
    const failing = interceptStore(await openSealedStore(kind, h.location, h.key), {
      deleteConnection: async () => {
        throw new TokenwardenError("store_unavailable", "the store is down");
      },
    });
    const w = await h.peer({ store: failing });
    await expect(w.connections.delete(id, { revoke: true })).rejects.toMatchObject({
      code: "store_unavailable",
    });
    // Still there, unclaimed, and no refresh reads as lost: the claim went back with its journal.
    const stored = await h.store.getCredential({ connectionId: id, kind: "bot" });
    expect(stored).toMatchObject({ claimUntilMs: null, refreshInDoubt: false });
  });

  it("close() during a delete with revoke waits for the delete", async () => {
    const { id } = await h.installAndImport();
    let reached = false;
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const gated = interceptStore(await openSealedStore(kind, h.location, h.key), {
      deleteConnection: async (real, connectionId) => {
        reached = true;
        await gate;
        return real(connectionId);
      },
    });
    const w = await h.peer({ store: gated });
    const deleting = w.connections.delete(id, { revoke: true });
    await eventually(
      () => reached,
      (r) => r,
      { what: "the delete to reach the store" },
    );
    let closed = false;
    const closing = w.close().then(() => {
      closed = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(false); // the tokens are revoked: the connection must go too
    open();
    await Promise.all([closing, deleting]);
    expect(await h.store.getConnection(id)).toBeNull();
  });

  it("delete with revoke revokes the refresh token as well as the access token", async () => {
    const { id, install } = await h.installAndImport();
    const refreshToken = install["refresh_token"] as string;
    const accessToken = install["access_token"] as string;
    expect(h.emu.control.tokenInfo(refreshToken).state).toBe("active");
    // With rotation on, auth.revoke revokes only the token it is given (slack-api.md §3.8).
    expect(await h.warden.connections.delete(id, { revoke: true })).toEqual({
      deleted: true,
      revoked: [{ kind: "bot", ok: true }],
    });
    expect(h.emu.control.tokenInfo(refreshToken)).toMatchObject({ state: "revoked" });
    expect(h.emu.control.tokenInfo(accessToken)).toMatchObject({ state: "revoked" });
    await expect(h.warden.connections.get(id)).rejects.toMatchObject({ code: "not_found" });
  });

  it("a dead refresh token means needs_reauth once, with its reason; reconnecting recovers", async () => {
    const { id } = await h.installAndImport();
    const needs = collect(h, "needs_reauth");
    const recovered = collect(h, "recovered");
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: id });
    advance(h, 11 * HOUR);
    const err = await h.warden.getToken(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsReauthError);
    expect((err as NeedsReauthError).reason).toBe("invalid_refresh_token");
    expect((err as NeedsReauthError).reconnectUrl).toContain(`connection_id=${id}`);
    const calls = h.emu.control.counters().calls["oauth.v2.access"];
    await expect(h.warden.getToken(id)).rejects.toBeInstanceOf(NeedsReauthError);
    expect(h.emu.control.counters().calls["oauth.v2.access"]).toBe(calls); // no retry loop
    expect(needs).toHaveLength(1);
    expect((await h.warden.connections.get(id)).status).toBe("needs_reauth");

    const again = h.emu.control.reinstall({
      clientId: h.emu.demoApp.clientId,
      teamId: id,
      botScopes: ["chat:write"],
    });
    await h.warden.connections.import({
      id,
      provider: "slack",
      credentials: {
        bot: {
          accessToken: again["access_token"] as string,
          refreshToken: again["refresh_token"] as string,
          expiresIn: 43_200,
        },
      },
    });
    expect(recovered).toHaveLength(1);
    expect((await h.warden.getToken(id)).accessToken).toBe(again["access_token"]);
    const types = (await h.warden.connections.events(id)).map((e) => e.type);
    expect(types.filter((t) => t === "needs_reauth")).toHaveLength(1);
    expect(types).toContain("recovered");
  });

  it("a health check finds an uninstalled bot (account_inactive) and marks it", async () => {
    const { id } = await h.installAndImport();
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId: id });
    const result = await h.warden.connections.check(id);
    expect(result.status).toBe("needs_reauth");
    expect(result.credentials[0]).toMatchObject({
      kind: "bot",
      ok: false,
      error: "account_inactive",
      reason: "account_inactive",
    });
  });

  it("a healthy check records an event and changes nothing", async () => {
    const { id } = await h.installAndImport();
    const result = await h.warden.connections.check(id);
    expect(result).toMatchObject({ status: "active", credentials: [{ kind: "bot", ok: true }] });
    expect((await h.warden.connections.events(id))[0]?.type).toBe("checked");
  });

  it("a healthy check records the workspace where the metadata has none, and never overwrites it", async () => {
    const { id } = await h.installAndImport();
    await h.warden.connections.check(id);
    expect((await h.warden.connections.get(id)).metadata).toMatchObject({ team_id: id });
    await h.warden.connections.import({
      id,
      provider: "slack",
      credentials: { bot: { accessToken: (await h.warden.getToken(id)).accessToken, expiresIn: 3_600 } },
      metadata: { team_id: "T-set-by-the-operator" },
    });
    await h.warden.connections.check(id);
    expect((await h.warden.connections.get(id)).metadata).toMatchObject({ team_id: "T-set-by-the-operator" });
  });

  it("a healthy check records whose user token it is (auth.test's user_id) where its provider data has none", async () => {
    const { id, install } = await h.installAndImport({ withUser: true });
    const member = (install["authed_user"] as Record<string, unknown>)["id"];
    const providerData = async (kind: "bot" | "user") =>
      (await h.warden.connections.get(id)).credentials.find((c) => c.kind === kind)?.providerData;
    expect(await providerData("user")).not.toHaveProperty("user_id");
    const result = await h.warden.connections.check(id);
    expect(result.credentials.map((c) => [c.kind, c.ok])).toEqual([
      ["bot", true],
      ["user", true],
    ]);
    expect(await providerData("user")).toMatchObject({ user_id: member });
    // A bot token's auth.test names its bot user as user_id: nothing of the kind is recorded for it.
    expect(await providerData("bot")).not.toHaveProperty("user_id");
    // Nothing else moved: the tokens are the ones imported, at their version.
    expect((await h.warden.getToken(id, { kind: "user" })).accessToken).toBe(
      (install["authed_user"] as Record<string, unknown>)["access_token"],
    );
  });

  it("a check never overwrites a user_id the user credential holds", async () => {
    const { id, install } = await h.installAndImport({ withUser: true });
    const user = install["authed_user"] as Record<string, unknown>;
    await h.warden.connections.import({
      id,
      provider: "slack",
      credentials: {
        bot: grantTokens(install),
        user: { ...grantTokens(user), providerData: { user_id: "U-said-by-slack" } },
      },
    });
    await h.warden.connections.check(id);
    const credentials = (await h.warden.connections.get(id)).credentials;
    expect(credentials.find((c) => c.kind === "user")?.providerData).toMatchObject({
      user_id: "U-said-by-slack",
    });
    expect(credentials.find((c) => c.kind === "bot")?.providerData).not.toHaveProperty("user_id");
  });

  it("an import with mergeMetadata keeps the stored metadata under its own; a bad flag changes nothing", async () => {
    const { id } = await h.installAndImport();
    const token = (await h.warden.getToken(id)).accessToken;
    const again = (metadata: Record<string, unknown>) => ({
      id,
      provider: "slack",
      credentials: { bot: { accessToken: token, expiresIn: 3_600 } },
      metadata,
    });
    await h.warden.connections.import(again({ customer: "cus_42", team_name: "old" }));
    await h.warden.connections.check(id); // fills in team_id, as it would between a reader and its write
    await h.warden.connections.import(again({ team_name: "new" }), { mergeMetadata: true });
    expect((await h.warden.connections.get(id)).metadata).toEqual({
      customer: "cus_42",
      team_id: id,
      team_name: "new",
    });
    const bad = { mergeMetadata: "yes" } as unknown as { mergeMetadata: boolean };
    await expect(h.warden.connections.import(again({}), bad)).rejects.toMatchObject({
      code: "invalid_input",
    });
    expect((await h.warden.connections.get(id)).metadata).toMatchObject({ customer: "cus_42" });
    // null from JavaScript is no options: the import replaces the metadata.
    const none = null as unknown as { mergeMetadata: boolean };
    await h.warden.connections.import(again({ plan: "pro" }), none);
    expect((await h.warden.connections.get(id)).metadata).toEqual({ plan: "pro" });
  });

  it("withToken under a flagged provider answers provider_misconfigured, not Slack's token_expired", async () => {
    const { id } = await h.installAndImport();
    const wrong = await h.peer({
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "0".repeat(32), baseUrl: h.emu.url },
      },
    });
    advance(h, 11 * HOUR);
    await wrong.getToken(id); // refused: flagged; the current token is served
    h.emu.control.advance(3_600); // Slack alone: the token is expired there
    const seen: string[] = [];
    const err = await wrong
      .withToken(id, async (token) => {
        seen.push(token);
        return authTest(h, token);
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).reason).toBe("provider_misconfigured");
    expect(seen).toHaveLength(1); // not called again with the token Slack called expired
  });

  it("a wrong client secret flags the provider and leaves every connection untouched", async () => {
    const { id } = await h.installAndImport();
    const wrong = await h.peer({
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "0".repeat(32), baseUrl: h.emu.url },
      },
    });
    const flagged: unknown[] = [];
    wrong.on("provider_misconfigured", (e) => flagged.push(e));
    advance(h, 11 * HOUR);
    const calls = () => h.emu.control.counters().calls["oauth.v2.access"] ?? 0;
    // The refresh is refused, but the current token still works for an hour: it is served.
    const token = await wrong.getToken(id);
    expect(token.expiresAt?.getTime()).toBeGreaterThan(h.clock.now());
    expect(calls()).toBe(1);
    // Flagged: no further refused calls to the provider…
    await wrong.getToken(id);
    expect(calls()).toBe(1);
    // …but one probe every 10 s, so a fixed secret is noticed.
    advance(h, 10_001);
    await wrong.getToken(id);
    expect(calls()).toBe(2);
    // Once the token has expired, callers hear why.
    advance(h, 2 * HOUR);
    const err = await wrong.getToken(id).catch((e: unknown) => e);
    expect((err as TokenwardenError).code).toBe("provider_misconfigured");
    expect((err as Error).message).toContain("client id/secret");
    await expect(wrong.getToken(id)).rejects.toMatchObject({ code: "provider_misconfigured" });
    expect(calls()).toBe(3);
    expect(flagged).toHaveLength(1);
    expect((await wrong.providerState("slack")).status).toBe("misconfigured");
    const connection = await h.warden.connections.get(id);
    expect(connection.status).toBe("active");
    expect(connection.credentials[0]?.failureCount).toBe(0);
    // The right credentials still work: the refresh token was never spent.
    expect((await h.warden.getToken(id)).accessToken).toBeTruthy();
    expect(h.emu.control.counters().refreshes).toBe(1);
  });

  it("a caller handed back for its own backoff does not use up a flagged provider's probe", async () => {
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    const wrong = await h.peer({
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "0".repeat(32), baseUrl: h.emu.url },
      },
    });
    const calls = () => h.emu.control.counters().calls["oauth.v2.access"] ?? 0;
    advance(h, 11 * HOUR); // both due, an hour left
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    await wrong.getToken(a.id); // A: a 500, so A backs off 10–15 s
    await wrong.getToken(b.id); // B: our client secret refused, so the provider is flagged
    expect(calls()).toBe(2);
    advance(h, 10_001); // the next probe is due; A is still in its backoff
    expect((await h.warden.connections.get(a.id)).credentials[0]?.nextAttemptAtMs).toBeGreaterThan(
      h.clock.now(),
    );
    await wrong.getToken(a.id); // handed back for A's backoff: no probe sent
    expect(calls()).toBe(2);
    await wrong.getToken(b.id); // so B's refresh is the probe
    expect(calls()).toBe(3);
  });

  for (const fault of [
    { kind: "http_500" as const },
    { kind: "internal_error" as const },
    { kind: "ratelimited" as const, retryAfterSeconds: 30 },
  ]) {
    it(`a ${fault.kind} during refresh-ahead keeps the connection alive and backs off`, async () => {
      const { id, install } = await h.installAndImport();
      const needs = collect(h, "needs_reauth");
      const failed = collect(h, "refresh_failed");
      h.emu.control.fault("oauth.v2.access", { ...fault, times: 1 });
      advance(h, 11 * HOUR);
      const token = await h.warden.getToken(id);
      expect(token.accessToken).toBe(install["access_token"]); // still valid for an hour
      const credential = (await h.warden.connections.get(id)).credentials[0];
      expect(credential?.status).toBe("refresh_failing");
      expect(credential?.nextAttemptAtMs).toBeGreaterThan(h.clock.now());
      if (fault.kind === "ratelimited")
        expect(credential?.nextAttemptAtMs).toBeGreaterThanOrEqual(h.clock.now() + 30_000);
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ connectionId: id, kind: "bot", provider: "slack" });
      expect(failed[0]?.reason).toBe(fault.kind === "ratelimited" ? "rate_limited" : "provider_unavailable");
      expect(failed[0]?.retryAt?.getTime()).toBe(credential?.nextAttemptAtMs);
      // In backoff: no new attempt, the old token is served.
      await h.warden.getToken(id);
      expect(h.emu.control.counters().calls["oauth.v2.access"]).toBe(1);
      advance(h, 11 * 60_000);
      const fresh = await h.warden.getToken(id);
      expect(fresh.accessToken).not.toBe(install["access_token"]);
      expect((await h.warden.connections.get(id)).status).toBe("active");
      expect(needs).toHaveLength(0);
    });
  }

  it("a 429 pauses refreshes on demand too: another credential keeps its token and its status", async () => {
    const a = await h.installAndImport();
    advance(h, HOUR);
    const b = await h.installAndImport();
    const c = await h.installAndImport();
    const failed = collect(h, "refresh_failed");
    h.emu.control.fault("oauth.v2.access", { kind: "ratelimited", retryAfterSeconds: 60, times: 100 });
    advance(h, 10 * HOUR); // A is due (1 h left); B and C have 2 h left
    await h.warden.getToken(a.id);
    expect(failed.map((e) => [e.connectionId, e.reason])).toEqual([[a.id, "rate_limited"]]);
    const calls = () => h.emu.control.counters().calls["oauth.v2.access"] ?? 0;
    expect(calls()).toBe(1);
    // Slack limits the token endpoint per app: within the Retry-After nobody else asks it either.
    const token = await h.warden.getToken(b.id, { minTtlSeconds: 3 * 3600 });
    expect(token.accessToken).toBe(b.install["access_token"]);
    const [forced] = await h.warden.connections.refresh(c.id);
    expect(forced).toMatchObject({ refreshed: false, error: "ratelimited" });
    expect(calls()).toBe(1);
    for (const id of [b.id, c.id]) expect((await h.warden.connections.get(id)).status).toBe("active");
    expect(failed).toHaveLength(1);
    // Past every expiry: A is refused again, and within that pause B's expired token is an error
    // that says when to come back, not another call.
    advance(h, 2 * HOUR + 1_000);
    await expect(h.warden.getToken(a.id)).rejects.toMatchObject({ reason: "rate_limited" });
    expect(calls()).toBe(2);
    const error = await h.warden.getToken(b.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect(error).toMatchObject({ code: "provider_unavailable", reason: "rate_limited" });
    expect((error as ProviderUnavailableError).retryAfterMs).toBe(60_000);
    expect(calls()).toBe(2);
    // After the Retry-After, refreshes go out again.
    h.emu.control.clearFaults();
    advance(h, 60_000);
    expect((await h.warden.getToken(b.id)).accessToken).not.toBe(b.install["access_token"]);
  });

  it("a 429's pause of the whole provider lasts a minute at most, whatever its Retry-After", async () => {
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "ratelimited", retryAfterSeconds: 86_400, times: 1 });
    advance(h, 11 * HOUR);
    await h.warden.getToken(a.id); // the one 429; A keeps its own day of backoff
    expect((await h.warden.connections.refresh(b.id))[0]).toMatchObject({ refreshed: false });
    advance(h, 60_000);
    expect((await h.warden.connections.refresh(b.id))[0]).toMatchObject({ refreshed: true });
    expect((await h.warden.connections.get(a.id)).credentials[0]?.nextAttemptAtMs).toBeGreaterThanOrEqual(
      h.clock.now() - 60_000 + 86_400_000,
    );
  });

  it("a refresh answered before a 429 and stored after it does not end the pause", async () => {
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    const c = await h.installAndImport();
    const gate = completionGate();
    const gated = interceptStore(await openSealedStore(kind, h.location, h.key), {
      completeRefreshes: gate.completeRefreshes,
    });
    const w = await h.peer({ store: gated });
    const calls = () => h.emu.control.counters().calls["oauth.v2.access"] ?? 0;
    advance(h, 11 * HOUR);
    const refreshingA = w.getToken(a.id); // answered at once, stored only when the gate opens
    await eventually(calls, (n) => n === 1, { what: "A's refresh to be answered" });
    h.emu.control.fault("oauth.v2.access", { kind: "ratelimited", retryAfterSeconds: 60, times: 100 });
    await w.getToken(b.id); // the 429
    gate.open();
    await refreshingA;
    await w.getToken(c.id); // still inside B's Retry-After
    expect(calls()).toBe(2);
  });

  it("a claim handed back unspent whose release fails does not fail the caller, and is released on retry", async () => {
    const { id, install } = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    advance(h, 11 * HOUR);
    await h.warden.getToken(id); // fails transiently: the credential is in backoff, its token still valid
    const ref = { connectionId: id, kind: "bot" as const };
    const before = await h.store.getCredential(ref);
    let failures = 1;
    const flaky = interceptStore(await openSealedStore(kind, h.location, h.key), {
      releaseClaim: async (real, claim) => {
        if (failures-- > 0) throw new Error("connection terminated unexpectedly");
        return real(claim);
      },
    });
    const w = await h.peer({ store: flaky });
    // In backoff, a caller needing more than the token has left takes the claim, which is handed back
    // unspent; its failed release is not the caller's problem.
    expect((await w.getToken(id, { minTtlSeconds: 2 * 3600 })).accessToken).toBe(install["access_token"]);
    await w.close(); // waits for the retried release
    const credential = await h.store.getCredential(ref);
    expect(credential?.claimUntilMs).toBeNull();
    // The journal is as the claim found it: this claim spent nothing.
    expect(credential?.refreshInDoubt).toBe(before?.refreshInDoubt);
    expect(credential?.version).toBe(before?.version);
    expect(h.emu.control.counters().calls["oauth.v2.access"]).toBe(1);
    expect(h.logs.some((l) => l.includes("could not hand back a claim; retrying"))).toBe(true);
  });

  it("numbers failures in a row in the event log, and starts again from 1 after a success", async () => {
    const { id } = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 3 });
    advance(h, 11 * HOUR);
    for (let i = 0; i < 3; i++) {
      await h.warden.getToken(id); // the attempt fails; the still-valid token is served
      const next = (await h.warden.connections.get(id)).credentials[0]?.nextAttemptAtMs ?? 0;
      advance(h, next - h.clock.now() + 1);
    }
    await h.warden.getToken(id);
    expect((await h.warden.connections.get(id)).status).toBe("active");
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    advance(h, 11 * HOUR);
    await h.warden.getToken(id);
    const attempts = (await h.warden.connections.events(id))
      .filter((e) => e.type === "refresh_failed")
      .map((e) => e.data["attempt"])
      .reverse();
    expect(attempts).toEqual([1, 2, 3, 1]);
    // Logged as a warning on the 1st, 2nd, 4th, 8th… failure in a row (as the webhook is sent), the
    // rest at debug: an outage's retries would otherwise be a warning per credential per attempt.
    const levels = h.logs
      .map((l) => JSON.parse(l) as { level: string; msg?: string; attempt?: number })
      .filter((l) => l.msg === "refresh failed; will retry")
      .map((l) => `${l.attempt}:${l.level}`);
    expect(levels).toEqual(["1:warn", "2:warn", "3:debug", "1:warn"]);
  });

  it("a refresh that hangs past the timeout is retried with the same token and recovers", async () => {
    const { id } = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "hang", times: 1, hangMs: 4_000 });
    advance(h, 12 * HOUR + 1); // expired: the caller has to wait for the refresh
    await expect(h.warden.getToken(id)).rejects.toMatchObject({ code: "provider_unavailable" });
    expect((await h.warden.connections.get(id)).status).toBe("refresh_failing");
    advance(h, 11 * 60_000);
    const fresh = await h.warden.getToken(id);
    expect((await authTest(h, fresh.accessToken))["ok"]).toBe(true);
    expect((await h.warden.connections.get(id)).status).toBe("active");
  });

  it("holds the claim until the new tokens are stored: a commit slower than the lease spends nothing twice", async () => {
    const { id } = await h.installAndImport();
    // A store whose commits of refreshed tokens wait for the test, and that counts lease renewals.
    const gate = completionGate();
    let renewals = 0;
    const slowStore = interceptStore(await openSealedStore(kind, h.location, h.key), {
      completeRefreshes: gate.completeRefreshes,
      // Counted once stored: the clock below moves only after a renewal has committed, or a peer could
      // read the lease before the renewal's write and find it lapsed (seen once on a loaded CI host).
      renewClaim: async (real, ...args) => {
        const held = await real(...args);
        if (held) renewals++;
        return held;
      },
    });
    const leaseMs = 600;
    const slow = await h.peer({ store: slowStore, timings: { ...FAST_TIMINGS, leaseMs } });
    advance(h, 12 * HOUR + 1); // expired: both callers need a refresh
    const first = slow.getToken(id);
    await eventually(
      () => h.emu.control.counterTotals().refreshes,
      (n) => n === 1,
      { what: "the provider to answer the slow warden" },
    );
    // Three leases pass on the shared clock while the commit waits; each is renewed before it ends.
    for (let i = 1; i <= 3; i++) {
      const seen = renewals;
      await eventually(
        () => renewals,
        (n) => n > seen,
        { what: `lease renewal ${i}` },
      );
      advance(h, leaseMs - 100);
    }
    const second = h.warden.getToken(id); // another process: must wait for the holder, not spend again
    await new Promise((resolve) => setTimeout(resolve, 50));
    gate.open();
    const [a, b] = await Promise.all([first, second]);
    expect(b.accessToken).toBe(a.accessToken);
    expect(h.emu.control.counterTotals()).toMatchObject({ refreshes: 1, maxPresentations: 1 });
    expect((await authTest(h, a.accessToken))["ok"]).toBe(true);
  });

  it("retries storing refreshed tokens after a failed write, holding the claim meanwhile", async () => {
    const { id } = await h.installAndImport();
    let failures = 1;
    const flaky = interceptStore(await openSealedStore(kind, h.location, h.key), {
      completeRefreshes: async (real, items) => {
        if (failures-- > 0) throw new Error("connection terminated unexpectedly");
        return real(items);
      },
    });
    const w = await h.peer({ store: flaky });
    advance(h, 12 * HOUR + 1);
    const token = await w.getToken(id);
    expect((await authTest(h, token.accessToken))["ok"]).toBe(true);
    expect(h.emu.control.counterTotals()).toMatchObject({ refreshes: 1, maxPresentations: 1 });
    const retried = h.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l["level"] === "warn");
    expect(retried).toContainEqual(
      expect.objectContaining({
        msg: "could not store refreshed tokens; retrying",
        connectionId: id,
        retryInMs: 100,
      }),
    );
  });

  it("a write that committed but lost its answer is recognised on retry as having stored these tokens", async () => {
    const { id } = await h.installAndImport();
    let answerLost = true;
    const lossy = interceptStore(await openSealedStore(kind, h.location, h.key), {
      completeRefreshes: async (real, items) => {
        const outcomes = await real(items);
        if (answerLost) {
          answerLost = false;
          throw new Error("connection terminated after COMMIT");
        }
        return outcomes;
      },
    });
    const w = await h.peer({ store: lossy });
    const refreshed: unknown[] = [];
    w.on("refreshed", (e) => refreshed.push(e));
    advance(h, 12 * HOUR + 1);
    const token = await w.getToken(id);
    expect((await authTest(h, token.accessToken))["ok"]).toBe(true);
    expect((await h.store.getCredential({ connectionId: id, kind: "bot" }))?.accessToken.reveal()).toBe(
      token.accessToken,
    );
    expect(refreshed).toHaveLength(1);
    expect(h.logs.some((l) => l.includes("its tokens were not stored"))).toBe(false);
  });

  it("when refreshed tokens cannot be stored at all, the journal stays open and the next attempt recovers them", async () => {
    const { id } = await h.installAndImport();
    let down = true;
    const failing = interceptStore(await openSealedStore(kind, h.location, h.key), {
      completeRefreshes: async (real, items) => {
        if (down) throw new Error("database is down");
        return real(items);
      },
    });
    const w = await h.peer({ store: failing });
    advance(h, 12 * HOUR + 1);
    await expect(w.getToken(id)).rejects.toThrow("database is down");
    expect(h.logs.some((l) => l.includes("could not store refreshed tokens; the next attempt"))).toBe(true);
    expect(await h.store.getCredential({ connectionId: id, kind: "bot" })).toMatchObject({
      refreshInDoubt: true,
    });
    down = false;
    advance(h, FAST_TIMINGS.leaseMs ?? 0); // the claim lapses; still inside Slack's grace period
    const fresh = await w.getToken(id);
    expect((await authTest(h, fresh.accessToken))["ok"]).toBe(true);
    const lastRefresh = (await w.connections.events(id)).find((e) => e.type === "refreshed");
    expect(lastRefresh?.data).toMatchObject({ recoveredLostResponse: true });
  });

  it("announces recovered once when bot and user credentials recover in one commit", async () => {
    const { id } = await h.installAndImport({ withUser: true });
    const other = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 2 });
    advance(h, 11 * HOUR); // every credential inside its refresh margin, all still valid
    await h.warden.getToken(id, { kind: "bot" });
    await h.warden.getToken(id, { kind: "user" });
    expect((await h.warden.connections.get(id)).status).toBe("refresh_failing");
    advance(h, 10 * 60_000); // past the backoff
    // The first write (another connection's) is held until both of this one's answers are waiting
    // behind it, so they are stored in one batch.
    const gate = completionGate();
    const gated = interceptStore(await openSealedStore(kind, h.location, h.key), {
      completeRefreshes: gate.completeRefreshes,
    });
    const w = await h.peer({ store: gated });
    const recovered: unknown[] = [];
    w.on("recovered", (e) => recovered.push(e));
    const first = w.getToken(other.id);
    await eventually(
      () => h.emu.control.counterTotals().refreshes,
      (n) => n === 1,
    );
    const both = Promise.all([w.getToken(id, { kind: "bot" }), w.getToken(id, { kind: "user" })]);
    await eventually(
      () => h.emu.control.counterTotals().refreshes,
      (n) => n === 3,
    );
    await new Promise((resolve) => setTimeout(resolve, 20)); // their answers reach the batcher
    gate.open();
    await Promise.all([first, both]);
    expect((await w.connections.get(id)).status).toBe("active");
    expect(recovered).toHaveLength(1);
  });

  it("once the provider answers again, the refreshes backed off through its outage are due at once", async () => {
    const a = await h.installAndImport();
    const b = await h.installAndImport();
    // Backoff delays are drawn between 10 s and their ceiling: a fixed draw halfway keeps the eighth
    // failure's minutes from coming out as seconds.
    const w = await h.peer({ random: { ...cryptoRandom, next: () => 0.5 } });
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1_000 });
    advance(h, 11 * HOUR); // inside the refresh margin
    // A 5xx leaves each refresh in doubt: its first retries come within seconds, then the backoff
    // grows (minutes by the eighth failure).
    for (let failures = 0; failures < 8; failures++) {
      for (const { id } of [a, b]) await w.connections.refresh(id);
      advance(h, 1_000);
    }
    const backedOff = (await w.connections.get(b.id)).credentials[0]?.nextAttemptAtMs ?? 0;
    expect(backedOff - h.clock.now()).toBeGreaterThan(60_000);
    expect(await w.refreshDue()).toBe(0);
    h.emu.control.clearFaults();
    const [ok] = await w.connections.refresh(a.id);
    expect(ok).toMatchObject({ refreshed: true });
    // b's backoff ends: in doubt, it waits the first backoff (10 s) rather than its minutes, so a
    // request of it that Slack may still be holding lands first.
    const endsAt = h.clock.now() + 10_000;
    await eventually(
      async () => (await w.connections.get(b.id)).credentials[0]?.nextAttemptAtMs,
      (at) => at !== undefined && at !== null && at <= endsAt,
      { what: "b's backoff shortened" },
    );
    advance(h, 10_000);
    expect(await w.refreshDue()).toBe(1);
    expect((await w.connections.get(b.id)).status).toBe("active");
  });

  it("while another process refreshes slowly, a caller whose stored token still lasts long enough does not wait", async () => {
    const { id } = await h.installAndImport();
    const before = await h.warden.getToken(id);
    const holder = await h.peer();
    h.emu.control.setLatency(1_500, "oauth.v2.access");
    advance(h, 11 * HOUR); // inside the refresh margin, an hour of validity left
    const slow = holder.getToken(id);
    await eventually(
      () => h.store.getCredential({ connectionId: id, kind: "bot" }),
      (c) => c?.claimUntilMs !== null,
      { what: "the holder's claim" },
    );
    const first = await Promise.race([
      h.warden.getToken(id, { kind: "bot", minTtlSeconds: 600 }).then((t) => ({ served: t })),
      slow.then(() => "the holder finished first" as const),
    ]);
    expect(first).toEqual({ served: expect.objectContaining({ accessToken: before.accessToken }) });
    // One who needs more than the stored token has left waits for the holder's new one.
    const rotated = await slow;
    expect(rotated.accessToken).not.toBe(before.accessToken);
    expect(h.emu.control.counterTotals()).toMatchObject({ refreshes: 1, maxPresentations: 1 });
  });

  it("a caller needing more validity than the stored token has waits for the holder's refresh", async () => {
    const { id } = await h.installAndImport();
    const before = await h.warden.getToken(id);
    // Slow enough that the holder cannot finish before both callers have looked, on a loaded machine too
    // (once it has, the stored token is the new one and either caller may rightly get it): 1.5 s was
    // not, under the whole suite on two cores. The holder's timeout and lease are stretched to match.
    const holder = await h.peer({
      timings: { ...FAST_TIMINGS, providerTimeoutMs: 10_000, leaseMs: 15_000 },
    });
    h.emu.control.setLatency(5_000, "oauth.v2.access");
    advance(h, 11 * HOUR + 30 * 60_000); // half an hour left
    const slow = holder.getToken(id);
    await eventually(
      () => h.store.getCredential({ connectionId: id, kind: "bot" }),
      (c) => c?.claimUntilMs !== null,
      { what: "the holder's claim" },
    );
    // Both in one process, so the second joins the first's refresh: the first can use the stored
    // token, the second needs more than it has left and must not be handed it.
    const [enough, more] = await Promise.all([
      h.warden.getToken(id, { kind: "bot", minTtlSeconds: 600 }),
      h.warden.getToken(id, { kind: "bot", minTtlSeconds: 3_000 }),
    ]);
    expect(enough.accessToken).toBe(before.accessToken);
    expect(more.accessToken).toBe((await slow).accessToken);
    expect(more.accessToken).not.toBe(before.accessToken);
    expect(h.emu.control.counterTotals()).toMatchObject({ refreshes: 1, maxPresentations: 1 });
  });

  it("inside the margin, only the caller sending the refresh waits: others in the process are served at once", async () => {
    const { id, install } = await h.installAndImport();
    await h.warden.getToken(id);
    h.emu.control.setLatency(1_500, "oauth.v2.access"); // inside the provider timeout (2 s)
    advance(h, 11 * HOUR); // inside the refresh margin, an hour of validity left
    const sending = h.warden.getToken(id); // this caller's refresh: it waits for it
    await eventually(
      () => h.emu.control.counters().calls["oauth.v2.access"] ?? 0,
      (n) => n === 1,
      { what: "the refresh at Slack" },
    );
    const others = await Promise.race([
      Promise.all(Array.from({ length: 20 }, () => h.warden.getToken(id))).then((t) => ({ served: t })),
      sending.then(() => "the refresh finished first" as const),
    ]);
    expect(others).toEqual({
      served: Array(20).fill(expect.objectContaining({ accessToken: install["access_token"] })),
    });
    // One who needs more than the stored token has left waits for the refresh, and gets its token.
    const needing = await h.warden.getToken(id, { minTtlSeconds: 2 * 3600 });
    const fresh = await sending;
    expect(fresh.accessToken).not.toBe(install["access_token"]);
    expect(needing.accessToken).toBe(fresh.accessToken);
    expect((await h.warden.getToken(id)).accessToken).toBe(fresh.accessToken);
    expect(h.emu.control.counters()).toMatchObject({ refreshes: 1, maxPresentations: 1 });
  });

  it("inside the margin and backed off, callers are served from memory, and the first after the backoff refreshes", async () => {
    const { id, install } = await h.installAndImport();
    let claims = 0;
    let reads = 0;
    const counted = interceptStore(await openSealedStore(kind, h.location, h.key), {
      claimRefresh: (real, ...args) => {
        claims++;
        return real(...args);
      },
      getCredential: (real, ...args) => {
        reads++;
        return real(...args);
      },
    });
    const w = await h.peer({ store: counted });
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    advance(h, 11 * HOUR);
    expect((await w.getToken(id)).accessToken).toBe(install["access_token"]); // the attempt fails
    expect(claims).toBe(1);
    const next = (await w.connections.get(id)).credentials[0]?.nextAttemptAtMs ?? 0;
    expect(next).toBeGreaterThan(h.clock.now());
    // The failure's own write moves the change stamp: one read learns the backoff, then memory serves.
    await eventually(
      async () => {
        const before = reads;
        await w.getToken(id);
        return reads - before;
      },
      (n) => n === 0,
      { what: "a call served from memory" },
    );
    for (let i = 0; i < 50; i++) expect((await w.getToken(id)).accessToken).toBe(install["access_token"]);
    expect(claims).toBe(1); // no claim taken and handed back per call while the backoff lasts
    advance(h, next - h.clock.now() + 1);
    const fresh = await w.getToken(id); // the backoff is over: this caller sends the refresh
    expect(fresh.accessToken).not.toBe(install["access_token"]);
    expect(claims).toBe(2);
    expect(h.emu.control.counters()).toMatchObject({ refreshes: 1, maxPresentations: 1 });
    await w.close();
  });

  it("a deferral ends with the change that ends it: a peer's claim ends in a backoff shorter than its lease", async () => {
    const { id, install } = await h.installAndImport();
    const ref = { connectionId: id, kind: "bot" as const };
    // Another process, with a long lease and a short backoff.
    const peer = await h.peer({
      timings: { ...FAST_TIMINGS, leaseMs: 60_000, backoffBaseMs: 1_000, backoffMaxMs: 1_000 },
    });
    await h.warden.getToken(id);
    advance(h, 11 * HOUR); // inside the refresh margin
    h.emu.control.setLatency(400, "oauth.v2.access");
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    const peerCall = peer.getToken(id, { minTtlSeconds: 2 * 3600 }); // the peer sends the refresh
    await eventually(
      async () => (await h.store.getCredential(ref))?.claimUntilMs ?? null,
      (until) => until !== null,
      { what: "the peer's claim" },
    );
    // Held by the peer for up to its lease: served at once, the refresh deferred.
    expect((await h.warden.getToken(id)).accessToken).toBe(install["access_token"]);
    await peerCall; // its attempt failed: the claim is released, a 1 s backoff recorded
    h.emu.control.setLatency(0, "oauth.v2.access");
    const stored = await h.store.getCredential(ref);
    expect(stored?.claimUntilMs).toBeNull();
    advance(h, (stored?.nextAttemptAtMs ?? 0) - h.clock.now() + 1);
    // Nothing holds the refresh back any more: a caller sends it (once the change is heard), not
    // one after the peer's lease would have ended, a minute later.
    const fresh = await eventually(
      () => h.warden.getToken(id),
      (t) => t.accessToken !== install["access_token"],
      { what: "a caller sending the refresh" },
    );
    expect(h.emu.control.counters()).toMatchObject({ refreshes: 1 });
    expect((await authTest(h, fresh.accessToken))["ok"]).toBe(true);
  });

  it("the outage sweep ends a deferral too: every process's callers send the refresh it made due", async () => {
    const { id, install } = await h.installAndImport();
    const ref = { connectionId: id, kind: "bot" as const };
    await h.warden.getToken(id);
    advance(h, 11 * HOUR); // inside the refresh margin
    // Another process's attempt failed in the provider's outage: backed off for ten minutes.
    const now = h.clock.now();
    const claimed = await h.store.claimRefresh(ref, {
      owner: "peer",
      nowMs: now,
      leaseMs: 5_000,
      freshUntilMs: Number.MAX_SAFE_INTEGER,
    });
    if (claimed.kind !== "claimed") throw new Error(`expected a claim, got ${claimed.kind}`);
    await h.store.failRefresh(
      claimed.claim,
      {
        status: "refresh_failing",
        reason: "provider_unavailable",
        lastError: "connect ECONNREFUSED",
        nextAttemptAtMs: now + 10 * 60_000,
        inDoubt: false,
      },
      now,
      { connectionId: id, kind: "bot", type: "refresh_failed", atMs: now, reason: "provider_unavailable" },
    );
    // Once the failure is heard, callers are served the stored token, the refresh deferred.
    await eventually(
      async () => (await h.warden.connections.get(id)).credentials[0]?.nextAttemptAtMs ?? null,
      (next) => next !== null,
      { what: "the backoff" },
    );
    await eventually(
      async () => {
        const before = h.warden.stats().hits;
        expect((await h.warden.getToken(id)).accessToken).toBe(install["access_token"]);
        return h.warden.stats().hits - before;
      },
      (hits) => hits === 1,
      { what: "a call served from memory" },
    );
    // The provider is back: a process whose refresh of another credential succeeded ends the backoffs.
    advance(h, 1_000);
    expect(await h.store.endOutageBackoffs?.("slack", h.clock.now(), 10_000)).toBe(1);
    const fresh = await eventually(
      () => h.warden.getToken(id),
      (t) => t.accessToken !== install["access_token"],
      { what: "a caller sending the refresh the sweep made due" },
    );
    expect(h.emu.control.counters()).toMatchObject({ refreshes: 1 });
    expect((await authTest(h, fresh.accessToken))["ok"]).toBe(true);
  });

  it("close() waits for a refresh in flight to store its outcome before closing the store", async () => {
    const { id } = await h.installAndImport();
    const closing = await h.peer();
    h.emu.control.setLatency(300, "oauth.v2.access");
    advance(h, 12 * HOUR + 1);
    const pending = closing.getToken(id);
    await eventually(
      () => h.store.getCredential({ connectionId: id, kind: "bot" }),
      (c) => c?.claimUntilMs !== null,
      { what: "the refresh to be claimed" },
    );
    await closing.close();
    const token = await pending;
    const stored = await h.store.getCredential({ connectionId: id, kind: "bot" });
    expect(stored).toMatchObject({ claimUntilMs: null, refreshInDoubt: false });
    expect(stored?.accessToken.reveal()).toBe(token.accessToken);
    expect((await authTest(h, token.accessToken))["ok"]).toBe(true);
  });

  // A response lost on the way, and Slack's fatal_error (HTTP 200 after it committed the rotation).
  it.each(["lost_response", "fatal_error"] as const)(
    "a refresh whose answer says nothing of its outcome (%s) is recovered inside the grace window",
    async (fault) => {
      const { id } = await h.installAndImport();
      h.emu.control.fault("oauth.v2.access", { kind: fault, times: 1 });
      advance(h, 12 * HOUR + 1);
      await expect(h.warden.getToken(id)).rejects.toMatchObject({ code: "provider_unavailable" });
      advance(h, 20_000); // past backoff, inside Slack's grace period
      const fresh = await h.warden.getToken(id);
      expect((await authTest(h, fresh.accessToken))["ok"]).toBe(true);
      const lastRefresh = (await h.warden.connections.events(id)).find((e) => e.type === "refreshed");
      expect(lastRefresh?.data).toMatchObject({ recoveredLostResponse: true });
    },
  );

  it("a refresh answered fatal_error, retried past the grace window, is named refresh_response_lost", async () => {
    const { id } = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "fatal_error", times: 1 });
    advance(h, 12 * HOUR + 1);
    await expect(h.warden.getToken(id)).rejects.toMatchObject({ code: "provider_unavailable" });
    advance(h, 10 * 60_000); // past the 120 s grace
    const err = await h.warden.getToken(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsReauthError);
    expect((err as NeedsReauthError).reason).toBe("refresh_response_lost");
  });

  it("a lost refresh response past the grace window is named refresh_response_lost", async () => {
    const { id } = await h.installAndImport();
    h.emu.control.fault("oauth.v2.access", { kind: "lost_response", times: 1 });
    advance(h, 12 * HOUR + 1);
    await expect(h.warden.getToken(id)).rejects.toMatchObject({ code: "provider_unavailable" });
    advance(h, 10 * 60_000); // past the 120 s grace
    const err = await h.warden.getToken(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NeedsReauthError);
    expect((err as NeedsReauthError).reason).toBe("refresh_response_lost");
  });

  it("user and bot credentials rotate independently, and a user failure shows on the connection", async () => {
    const { id } = await h.installAndImport({ withUser: true });
    advance(h, 11 * HOUR);
    const bot = await h.warden.getToken(id, { kind: "bot" });
    const user = await h.warden.getToken(id, { kind: "user" });
    expect(bot.tokenType).toBe("bot");
    expect(user.tokenType).toBe("user");
    expect(h.emu.control.counters().refreshes).toBe(2);
    h.emu.control.revokeToken(user.accessToken);
    const check = await h.warden.connections.check(id);
    expect(check.credentials.find((c) => c.kind === "user")).toMatchObject({
      ok: false,
      reason: "token_revoked",
    });
    expect(check.status).toBe("needs_reauth");
    expect((await h.warden.getToken(id, { kind: "bot" })).accessToken).toBe(bot.accessToken);
  });

  it("the background refresher refreshes due credentials without any caller", async () => {
    const ids = [(await h.installAndImport()).id, (await h.installAndImport()).id];
    advance(h, 11 * HOUR);
    expect(await h.warden.refreshDue()).toBe(2);
    expect(h.emu.control.counters().refreshes).toBe(2);
    expect(await h.warden.refreshDue()).toBe(0);
    for (const id of ids)
      expect((await h.warden.connections.get(id)).credentials[0]?.refreshedAtMs).toBe(h.clock.now());
  });

  it("keeps every token out of the store's bytes and the event log", async () => {
    const { id, install } = await h.installAndImport({ withUser: true });
    advance(h, 11 * HOUR);
    const bot = await h.warden.getToken(id, { kind: "bot" });
    const user = await h.warden.getToken(id, { kind: "user" });
    const secrets = [
      install["access_token"],
      install["refresh_token"],
      bot.accessToken,
      user.accessToken,
      (install["authed_user"] as Record<string, unknown>)["refresh_token"],
    ] as string[];
    const atRest = await h.textAtRest();
    const events = JSON.stringify(await h.warden.connections.events(id));
    const listed = JSON.stringify(await h.warden.connections.list());
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    await h.warden.connections.refresh(id); // a failure gets logged and recorded too
    const logs = h.logs.join("\n");
    expect(logs.length).toBeGreaterThan(0);
    for (const s of secrets) {
      expect(logs).not.toContain(s);
      expect(atRest).not.toContain(s);
      expect(events).not.toContain(s);
      expect(listed).not.toContain(s);
    }
  });

  it("rotates encryption keys under concurrent reads, losing nothing", { timeout: 20_000 }, async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await h.installAndImport()).id);
    const newKey = randomBytes(32).toString("base64");
    const ring = `new:${newKey},${h.key}`; // the old key keeps its derived id
    const rotator = await h.peer({}, ring);
    const reader = await h.peer({}, ring);
    let reading = true;
    let reads = 0;
    const failures: unknown[] = [];
    const readLoop = (async () => {
      while (reading) {
        for (const id of ids) {
          // A fresh reader each pass, so every read goes to the store, not a cache.
          await reader.connections.get(id);
          await reader.getToken(id).catch((e: unknown) => failures.push(e));
          reads++;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const resealed = await rotator.rotateKeys({ batchSize: 2 }).finally(() => {
      reading = false;
    });
    await readLoop;
    expect(resealed).toBe(5);
    expect(reads).toBeGreaterThan(0);
    expect(failures).toEqual([]);
    const onlyNew = await h.peer({}, `new:${newKey}`);
    for (const id of ids) expect((await onlyNew.getToken(id)).accessToken).toMatch(/^xoxe\.xoxb-/);
    expect(await rotator.rotateKeys()).toBe(0);
  });

  it("rotates every readable credential when one cannot be opened, then names that one", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.installAndImport()).id);
    // One connection sealed under a key that was then dropped from the ring too early.
    const goneKey = `gone:${randomBytes(32).toString("base64")}`;
    const gone = await h.peer({}, `${goneKey},${h.key}`);
    await gone.connections.import({
      id: "A0",
      provider: "slack",
      credentials: { bot: { accessToken: "xoxb-a0", refreshToken: "xoxe-a0", expiresIn: 43_200 } },
    });
    const newKey = `new:${randomBytes(32).toString("base64")}`;
    const rotator = await h.peer({}, `${newKey},${h.key}`);
    const progress: number[] = [];
    const error = await rotator
      .rotateKeys({ batchSize: 2, onProgress: (n) => progress.push(n) })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "config_invalid" });
    expect(String((error as Error).message)).toMatch(
      /^re-encrypted 3 credential\(s\), but 1 could not be opened .*: A0\/bot \(key id "gone"\)\./,
    );
    expect(String((error as Error).message)).not.toContain(goneKey.slice(5));
    expect(progress.at(-1)).toBe(3);
    const newOnly = await h.peer({}, newKey);
    for (const id of ids) expect((await newOnly.getToken(id)).accessToken).toMatch(/^xoxe\.xoxb-/);
  });

  it("refuses to start with a key first that keys rotate moved every value away from", async () => {
    const { id } = await h.installAndImport();
    const newKey = `new:${randomBytes(32).toString("base64")}`;
    expect(await (await h.peer({}, `${newKey},${h.key}`)).rotateKeys()).toBe(1);
    // Step 2's ring (old key first), on an instance started late or a cron job's stale environment:
    // what it wrote would be sealed under the key the README now calls safe to remove.
    const oldId = deriveKeyId(Buffer.from(h.key, "base64"));
    const error = await h.peer({}, `${h.key},${newKey}`).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "config_invalid" });
    expect(String((error as Error).message)).toMatch(
      new RegExp(`key id "${oldId}".*keys rotate.*key id "new"`),
    );
    expect(String((error as Error).message)).not.toContain(h.key);
    expect(String((error as Error).message)).not.toContain(newKey.slice(4));
    // The rotated ring starts, and so do both rings of the next rotation.
    expect((await (await h.peer({}, newKey)).getToken(id)).accessToken).toMatch(/^xoxe\.xoxb-/);
    const newer = `newer:${randomBytes(32).toString("base64")}`;
    await h.peer({}, `${newKey},${newer}`);
    await h.peer({}, `${newer},${newKey}`);
  });

  it("a rotation run by mistake with the new key second marks nothing: the new key can still go first", async () => {
    const { id } = await h.installAndImport();
    const newKey = `new:${randomBytes(32).toString("base64")}`;
    // Step 2's ring (old key first) in the shell that runs keys rotate: it re-seals under the old key.
    await (await h.peer({}, `${h.key},${newKey}`)).rotateKeys();
    const stepThree = await h.peer({}, `${newKey},${h.key}`);
    expect(await stepThree.rotateKeys()).toBe(1);
    expect((await (await h.peer({}, newKey)).getToken(id)).accessToken).toMatch(/^xoxe\.xoxb-/);
  });

  it("refuses to start with a key that did not seal what the store holds, before writing anything", async () => {
    const { id } = await h.installAndImport();
    const before = await h.warden.connections.events(id);
    const wrongKey = randomBytes(32).toString("base64");
    const error = await h.peer({}, wrongKey).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "config_invalid" });
    expect(String((error as Error).message)).toMatch(
      /no stored secret is sealed with a key TOKENWARDEN_ENCRYPTION_KEY holds \(they use key id "[^"]+"\)/,
    );
    expect(String((error as Error).message)).not.toContain(wrongKey);
    expect(await h.warden.connections.events(id)).toEqual(before);
    // Adding the new key in front of the old one is a rotation, and starts.
    await expect(h.peer({}, `new:${wrongKey},${h.key}`)).resolves.toBeDefined();
  });

  it("asking for more validity than Slack grants spends one refresh token, not two", async () => {
    // Imported already expired (a migration of idle tokens), then asked for 24 h: the refresh brings
    // Slack's 12 h, the most there is; asking again would spend a second refresh token for no more.
    const { id, install } = await h.installAndImport();
    const { accessToken, refreshToken } = grantTokens(install);
    await h.warden.connections.import({
      id,
      provider: "slack",
      credentials: { bot: { accessToken, refreshToken, expiresAt: h.clock.now() - 1_000 } },
    });
    const before = h.emu.control.counters().refreshes;
    const token = await h.warden.getToken(id, { minTtlSeconds: 24 * 3600 });
    expect(token.expiresAt?.getTime()).toBe(h.clock.now() + 43_200_000);
    expect(h.emu.control.counters().refreshes - before).toBe(1);

    // Imported with a lifetime Slack never gave (10 days), then asked for 24 h with one day left.
    const other = await h.installAndImport();
    await h.warden.connections.import({
      id: other.id,
      provider: "slack",
      credentials: {
        bot: { ...grantTokens(other.install), expiresIn: 10 * 86_400 },
      },
    });
    h.clock.advance(9 * 86_400_000);
    const spent = h.emu.control.counters().refreshes;
    await h.warden.getToken(other.id, { minTtlSeconds: 24 * 3600 });
    expect(h.emu.control.counters().refreshes - spent).toBe(1);
  });

  it("a forced refresh of a credential without a refresh token says so instead of 'refreshed'", async () => {
    await h.warden.connections.import({
      id: "L1",
      provider: "slack",
      credentials: { bot: { accessToken: "xoxb-long-lived", expiresIn: 3_600 } },
    });
    const before = h.emu.control.counters().refreshes;
    const results = await h.warden.connections.refresh("L1", { kind: "bot" });
    expect(results).toEqual([
      {
        kind: "bot",
        refreshed: false,
        error: "no_refresh_token",
        expiresAt: new Date(h.clock.now() + 3_600_000),
      },
    ]);
    expect(h.emu.control.counters().refreshes).toBe(before);
  });

  it("refuses to start with other key material under a key id the store knows", async () => {
    await h.installAndImport();
    const keyA = randomBytes(32).toString("base64");
    const keyB = randomBytes(32).toString("base64");
    const a = await h.peer({}, `prod:${keyA},${h.key}`);
    await a.connections.import({
      id: "P1",
      provider: "slack",
      credentials: { bot: { accessToken: "xoxb-p1", refreshToken: "xoxe-p1", expiresIn: 43_200 } },
    });
    const before = await h.warden.connections.list({});
    // The staging key under the production key's id, say: it would seal what the real one cannot open.
    for (const ring of [`prod:${keyB},${h.key}`, `${h.key},prod:${keyB}`]) {
      const error = await h.peer({}, ring).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "config_invalid" });
      expect(String((error as Error).message)).toContain('the key with id "prod"');
      expect(String((error as Error).message)).not.toContain(keyB);
    }
    expect(await h.warden.connections.list({})).toEqual(before);
    // A key id no value uses yet, where one did: its key check alone remembers which key it is.
    const fresh = await h.peer({}, `next:${keyA},${h.key}`);
    await fresh.close();
    await expect(h.peer({}, `next:${keyB},${h.key}`)).rejects.toMatchObject({ code: "config_invalid" });
    await expect(h.peer({}, `next:${keyA},${h.key}`)).resolves.toBeDefined();
  });

  it("rejects bad import input with a clear error and changes nothing", async () => {
    await expect(
      h.warden.connections.import({ provider: "slack", credentials: {} } as never),
    ).rejects.toMatchObject({ code: "invalid_input" });
    await expect(
      h.warden.connections.import({
        id: "bad id!",
        provider: "slack",
        credentials: { bot: { accessToken: "xoxb-secret-value" } },
      }),
    ).rejects.toThrow(/id/);
    const err = await h.warden.connections
      .import({
        provider: "slack",
        credentials: { bot: { accessToken: "xoxb-secret-value", expiresIn: -1 } },
      })
      .catch((e: unknown) => e as Error);
    expect((err as Error).message).not.toContain("xoxb-secret-value");
    // Expiries no store can keep as an instant: 1e13 s from now, or 9e15 ms (past what a Date holds).
    for (const bot of [{ expiresIn: 1e13 }, { expiresAt: 9e15 }]) {
      await expect(
        h.warden.connections.import({
          provider: "slack",
          credentials: { bot: { accessToken: "xoxb-secret-value", ...bot } },
        }),
      ).rejects.toMatchObject({ code: "invalid_input" });
    }
    expect((await h.warden.connections.list()).items).toHaveLength(0);
  });
});
