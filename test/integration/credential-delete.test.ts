// connections.deleteCredential: one credential of a connection forgotten (Slack: a user signed out,
// the bot kept), optionally revoked at the provider first; on both stores, against the emulator.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import { describeEvent } from "../../src/diagnose/explain-connection.js";
import type { WardenEventMap } from "../../src/engine/warden-events.js";
import { authTest, type EngineHarness, grantTokens, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { completionGate, interceptStore } from "../helpers/intercept-store.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

function collect<E extends keyof WardenEventMap>(h: EngineHarness, name: E): WardenEventMap[E][] {
  const seen: WardenEventMap[E][] = [];
  h.warden.on(name, (e) => seen.push(e));
  return seen;
}

/** The user part of an emulator install: its access and refresh token. */
function userTokens(install: Record<string, unknown>): { access: string; refresh: string } {
  const user = install["authed_user"] as Record<string, unknown>;
  return { access: String(user["access_token"]), refresh: String(user["refresh_token"]) };
}

describe.each(STORE_KINDS)("deleting one credential on %s", (kind) => {
  let h: EngineHarness;
  beforeEach(async () => {
    h = await openEngineHarness(kind);
  });
  afterEach(async () => {
    await h.close();
  });

  it("signs the user out at Slack and forgets its tokens; the bot stays, served as before", async () => {
    const { id, install } = await h.installAndImport({ withUser: true });
    const user = userTokens(install);
    const bot = String(install["access_token"]);
    await h.warden.getToken(id, { kind: "user" }); // cached in this process

    const result = await h.warden.connections.deleteCredential(id, "user", { revoke: true });
    expect(result).toMatchObject({
      deleted: true,
      revoked: [{ kind: "user", ok: true }],
      connection: { id, status: "active", reason: null },
    });
    expect(result.connection.credentials.map((c) => c.kind)).toEqual(["bot"]);
    // Dead at Slack: the access token answers token_revoked, the refresh token refreshes nothing.
    expect(await authTest(h, user.access)).toMatchObject({ ok: false, error: "token_revoked" });
    expect(h.emu.control.tokenInfo(user.refresh)).toMatchObject({ state: "revoked" });
    expect(await authTest(h, bot)).toMatchObject({ ok: true });

    const gone = await h.warden.getToken(id, { kind: "user" }).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(TokenwardenError);
    expect(gone).toMatchObject({ code: "not_found", message: `no user credential on connection ${id}` });
    expect((await h.warden.getToken(id)).accessToken).toBe(bot);

    const events = await h.warden.connections.events(id);
    expect(events[0]).toMatchObject({ type: "deleted", kind: "user", data: { revoked: true } });
    expect(describeEvent(events[0] as (typeof events)[number])).toBe(
      "credential deleted, its tokens revoked at the provider first",
    );
    const said = JSON.stringify({ events, logs: h.logs, result });
    for (const secret of [user.access, user.refresh, bot]) expect(said).not.toContain(secret);
  });

  it("another process holding the user token in memory stops serving it", async () => {
    const { id } = await h.installAndImport({ withUser: true });
    const peer = await h.peer();
    await peer.getToken(id, { kind: "user" });
    expect(peer.cachedToken(id, { kind: "user" })).not.toBeNull();
    await h.warden.connections.deleteCredential(id, "user", { revoke: true });
    await eventually(
      () => peer.getToken(id, { kind: "user" }).catch((e: unknown) => e),
      (r) => r instanceof TokenwardenError && r.code === "not_found",
      { what: "the peer to stop serving the deleted credential" },
    );
    expect(peer.cachedToken(id, { kind: "user" })).toBeNull();
    await expect(peer.getToken(id, { kind: "bot" })).resolves.toMatchObject({ kind: "bot" });
  });

  it("removing a dead user credential ends the connection's needs_reauth episode; dead tokens count as revoked", async () => {
    const { id, install } = await h.installAndImport({ withUser: true });
    const user = userTokens(install);
    const needs = collect(h, "needs_reauth");
    const recovered = collect(h, "recovered");
    // Slack killed both of the user's tokens: the access token answers token_revoked, the refresh
    // token invalid_auth to auth.revoke.
    h.emu.control.leakToken(user.access);
    h.emu.control.leakToken(user.refresh);
    await h.warden.connections.check(id);
    expect(await h.warden.connections.get(id)).toMatchObject({
      status: "needs_reauth",
      reason: "token_revoked",
    });
    expect(needs).toHaveLength(1);

    const result = await h.warden.connections.deleteCredential(id, "user", { revoke: true });
    expect(result.revoked).toEqual([{ kind: "user", ok: true }]);
    expect(result.connection).toMatchObject({ status: "active", reason: null });
    expect(await h.warden.connections.get(id)).toMatchObject({ status: "active", reason: null });
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ connectionId: id, kind: "user" });
    const types = (await h.warden.connections.events(id)).map((e) => e.type);
    expect(types.slice(0, 2)).toEqual(["recovered", "deleted"]);
  });

  it("refuses the last credential, pointing at the connection delete: nothing revoked, nothing changed", async () => {
    const { id, install } = await h.installAndImport();
    const err = await h.warden.connections
      .deleteCredential(id, "bot", { revoke: true })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "conflict",
      message: `the bot credential is the only one connection ${id} holds: delete the connection instead`,
    });
    expect(h.emu.control.counters().calls["auth.revoke"] ?? 0).toBe(0);
    expect(h.emu.control.tokenInfo(String(install["access_token"]))).toMatchObject({ state: "active" });
    expect((await h.warden.connections.get(id)).credentials).toHaveLength(1);
    expect((await h.warden.connections.events(id)).map((e) => e.type)).toEqual(["imported"]);
  });

  it("a kind the connection does not hold is not_found, saying what it holds; so is an unknown connection", async () => {
    const { id } = await h.installAndImport();
    await expect(h.warden.connections.deleteCredential(id, "user", { revoke: true })).rejects.toMatchObject({
      code: "not_found",
      message: `connection ${id} has no user credential (it holds bot)`,
    });
    // Not a kind at all: not echoed (a path segment may hold anything, a token included).
    await expect(
      h.warden.connections.deleteCredential(id, "xoxb-oops" as never, { revoke: true }),
    ).rejects.toMatchObject({
      code: "not_found",
      message: `connection ${id} has no such credential: a kind is bot, user or default (it holds bot)`,
    });
    await expect(h.warden.connections.deleteCredential("nope", "user")).rejects.toMatchObject({
      code: "not_found",
      message: "no connection nope",
    });
    await expect(h.warden.connections.deleteCredential(id, undefined as never)).rejects.toMatchObject({
      code: "invalid_input",
    });
    expect(h.emu.control.counters().calls["auth.revoke"] ?? 0).toBe(0);
    expect((await h.warden.connections.get(id)).credentials).toHaveLength(1);
  });

  it("without revoke, forgets the credential and leaves its tokens alone at Slack", async () => {
    const { id, install } = await h.installAndImport({ withUser: true });
    const user = userTokens(install);
    const result = await h.warden.connections.deleteCredential(id, "user");
    expect(result).toMatchObject({ deleted: true, revoked: [] });
    expect(h.emu.control.counters().calls["auth.revoke"] ?? 0).toBe(0);
    expect(await authTest(h, user.access)).toMatchObject({ ok: true });
    const [deleted] = await h.warden.connections.events(id);
    expect(deleted).toMatchObject({ type: "deleted", kind: "user", data: { revoked: false } });
    expect(describeEvent(deleted as NonNullable<typeof deleted>)).toBe(
      "credential deleted (its tokens were not revoked)",
    );
  });

  it("with Slack down, the failed revoke is reported and the credential still deleted, as a connection delete does", async () => {
    const { id } = await h.installAndImport({ withUser: true });
    h.emu.control.fault("auth.revoke", { kind: "http_500", times: 2 });
    const result = await h.warden.connections.deleteCredential(id, "user", { revoke: true });
    expect(result.revoked).toEqual([{ kind: "user", ok: false, error: "refresh token: http_500" }]);
    expect(result.connection.credentials.map((c) => c.kind)).toEqual(["bot"]);
    const [deleted] = await h.warden.connections.events(id);
    expect(deleted).toMatchObject({
      type: "deleted",
      data: { revoked: false, error: "refresh token: http_500" },
    });
    expect(describeEvent(deleted as NonNullable<typeof deleted>)).toBe(
      "credential deleted; revoking its tokens failed (refresh token: http_500)",
    );
  });

  it("waits for a refresh of the user credential in flight elsewhere and revokes the tokens it brought", async () => {
    const { id } = await h.installAndImport({ withUser: true });
    const gate = completionGate();
    const gated = interceptStore(await openSealedStore(kind, h.location, h.key), {
      completeRefreshes: gate.completeRefreshes,
    });
    const peer = await h.peer({ store: gated });
    h.clock.advance(11 * HOUR);
    const refreshing = peer.getToken(id, { kind: "user" });
    await eventually(
      () => h.emu.control.counterTotals().refreshes,
      (n) => n === 1,
      { what: "the provider to answer the peer" },
    );
    const deleting = h.warden.connections.deleteCredential(id, "user", { revoke: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    gate.open();
    const [token, deleted] = await Promise.all([refreshing, deleting]);
    expect(deleted.revoked).toEqual([{ kind: "user", ok: true }]);
    // The peer's refresh was stored before the revoke: its tokens are the ones revoked.
    expect(h.emu.control.tokenInfo(token.accessToken)).toMatchObject({ state: "revoked" });
    expect(await h.store.getCredential({ connectionId: id, kind: "user" })).toBeNull();
  });

  it("a reconnect stored while revoking keeps its new tokens: conflict, nothing deleted", async () => {
    const { id, install } = await h.installAndImport({ withUser: true });
    const before = userTokens(install);
    const reinstall = h.emu.control.reinstall({
      clientId: h.emu.demoApp.clientId,
      teamId: id,
      userId: String((install["authed_user"] as Record<string, unknown>)["id"]),
      botScopes: ["chat:write"],
      userScopes: ["users:read"],
    });
    const reconnected = reinstall["authed_user"] as Record<string, unknown>;
    const racing = interceptStore(await openSealedStore(kind, h.location, h.key), {
      deleteCredential: async (real, ref, nowMs, event, options) => {
        // A person reconnects between the revocation and the delete.
        await h.warden.connections.import({
          id,
          provider: "slack",
          credentials: { bot: grantTokens(reinstall), user: grantTokens(reconnected) },
        });
        return real(ref, nowMs, event, options);
      },
    });
    const w = await h.peer({ store: racing });
    const err = await w.connections.deleteCredential(id, "user", { revoke: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "conflict",
      message: `the user credential of connection ${id} was replaced while it was being revoked (a reconnect): its old tokens are revoked, the new ones kept; delete it again to remove them`,
    });
    expect(h.emu.control.tokenInfo(before.access)).toMatchObject({ state: "revoked" });
    const stored = await h.store.getCredential({ connectionId: id, kind: "user" });
    expect(stored?.accessToken.reveal()).toBe(reconnected["access_token"]);
    expect(stored).toMatchObject({ status: "active", claimUntilMs: null });
    expect(await authTest(h, String(reconnected["access_token"]))).toMatchObject({ ok: true });
  });

  // Nothing was revoked, so nothing says the credential left is dead: it must stay as it is.
  it("without revoke, found the last credential (the other deleted meanwhile): refused, left live", async () => {
    const { id, install } = await h.installAndImport({ withUser: true });
    const user = userTokens(install);
    const needs = collect(h, "needs_reauth");
    const racing = interceptStore(await openSealedStore(kind, h.location, h.key), {
      deleteCredential: async (real, ref, nowMs, event, options) => {
        // Another caller deletes the bot credential first.
        await real({ connectionId: id, kind: "bot" }, nowMs, { ...event, kind: "bot" });
        return real(ref, nowMs, event, options);
      },
    });
    const w = await h.peer({ store: racing });
    const err = await w.connections.deleteCredential(id, "user").catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "conflict",
      message: `the user credential is the only one connection ${id} holds: delete the connection instead`,
    });
    expect(await h.warden.connections.get(id)).toMatchObject({
      status: "active",
      reason: null,
      credentials: [expect.objectContaining({ kind: "user", status: "active" })],
    });
    expect(needs).toEqual([]);
    expect((await h.warden.getToken(id, { kind: "user" })).accessToken).toBe(user.access);
    expect(h.emu.control.counters().calls["auth.revoke"] ?? 0).toBe(0);
  });

  it("revoked, then found the last credential (the other deleted meanwhile): marked dead as it is, conflict", async () => {
    const { id } = await h.installAndImport({ withUser: true });
    const racing = interceptStore(await openSealedStore(kind, h.location, h.key), {
      deleteCredential: async (real, ref, nowMs, event, options) => {
        // Another caller deletes the bot credential first.
        await real({ connectionId: id, kind: "bot" }, nowMs, { ...event, kind: "bot" });
        return real(ref, nowMs, event, options);
      },
    });
    const w = await h.peer({ store: racing });
    const err = await w.connections.deleteCredential(id, "user", { revoke: true }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "conflict",
      message: `the user credential became the only one connection ${id} holds while it was being revoked: it is kept, marked needs_reauth (token_revoked); delete the connection instead`,
    });
    expect(await h.warden.connections.get(id)).toMatchObject({
      status: "needs_reauth",
      reason: "token_revoked",
      credentials: [expect.objectContaining({ kind: "user", status: "needs_reauth" })],
    });
    expect(await h.store.getCredential({ connectionId: id, kind: "user" })).toMatchObject({
      claimUntilMs: null,
      refreshInDoubt: false,
    });
  });
});
