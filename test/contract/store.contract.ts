/**
 * One behavioural suite for every Store adapter (DESIGN.md invariants 1, 2, 5
 * and 6). An adapter's test file calls `storeContract(name, open)`; `open`
 * gives a fresh, migrated database per test.
 */

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import type {
  ClaimDueOptions,
  ClaimResult,
  RefreshClaim,
  Sealer,
  Store,
  UnreadableCredential,
} from "../../src/core/ports.js";
import { Secret } from "../../src/core/secret.js";
import type { CredentialRef, NewConnection, ProviderPause, Status } from "../../src/core/types.js";
import { createSealer, sealedPrefix } from "../../src/crypto/seal.js";
import { eventually } from "../helpers/eventually.js";
import { FakeClock } from "../helpers/fake-clock.js";
import {
  connection,
  credential,
  event,
  NEW_KEY,
  newKeyOnlySealer,
  OLD_KEY,
  refusedClient,
  rotatedSealer,
  testSealer,
  tokens,
} from "../helpers/store-fixtures.js";

export interface StoreHarness {
  /** Migrated, sealing with `sealer`. */
  store: Store;
  /** Another store on the same database, as another process would open it. */
  openPeer(sealer: Sealer, options?: { outbox?: boolean }): Promise<Store>;
  /** Everything the database holds at rest (SQLite: file + WAL bytes; PostgreSQL: every row as text). */
  textAtRest(): Promise<string>;
  /** Alters one character of the ciphertext of ref's sealed refresh token, in the database itself. */
  corruptRefreshToken(ref: CredentialRef): Promise<void>;
  close(): Promise<void>;
}

const LEASE = 30_000;
const FORCE = Number.MAX_SAFE_INTEGER;
const BOT: CredentialRef = { connectionId: "T1", kind: "bot" };
const USER: CredentialRef = { connectionId: "T1", kind: "user" };

function claimOf(result: ClaimResult): RefreshClaim & { previousAttemptLost: boolean } {
  if (result.kind !== "claimed") throw new Error(`expected claimed, got ${result.kind}`);
  return { ...result.claim, previousAttemptLost: result.previousAttemptLost };
}

export function storeContract(name: string, open: (sealer: Sealer) => Promise<StoreHarness>): void {
  describe(`${name}: Store contract`, () => {
    let h: StoreHarness;
    let store: Store;
    let clock: FakeClock;
    const peers: Store[] = [];

    beforeEach(async () => {
      h = await open(testSealer());
      store = h.store;
      clock = new FakeClock(1_000);
    });
    afterEach(async () => {
      for (const peer of peers.splice(0)) await peer.close();
      await h.close();
    });

    /** A refresher's claimDue pass on the store: Slack's due credentials, the usual lease. */
    const claimDue = (owner: string, nowMs: number, limit = 10) =>
      store.claimDue({ owner, nowMs, leaseMs: LEASE, limit, provider: "slack" });

    async function peer(sealer: Sealer = testSealer(), options: { outbox?: boolean } = {}): Promise<Store> {
      const p = await h.openPeer(sealer, options);
      peers.push(p);
      return p;
    }

    /** T1 with a bot (due at 8s, expires 10s) and a user credential (due 18s, expires 20s). */
    async function seedT1(): Promise<void> {
      await store.putConnection(
        connection("T1", [
          credential("bot", "t1-bot"),
          credential("user", "t1-user", { expiresAtMs: 20_000, refreshDueAtMs: 18_000 }),
        ]),
        clock.now(),
        [event("T1", "imported", clock.now())],
      );
    }

    const claim = (ref: CredentialRef, owner: string, nowMs: number, freshUntilMs = FORCE) =>
      store.claimRefresh(ref, { owner, nowMs, leaseMs: LEASE, freshUntilMs });

    /**
     * A refresh of `ref` through `s` whose reply carried no refresh token: the new access token is
     * sealed under `s`'s current key, the refresh token stays under the key it had.
     */
    async function refreshKeepingRefreshToken(s: Store, ref: CredentialRef, label: string): Promise<boolean> {
      const c = claimOf(
        await s.claimRefresh(ref, { owner: "o", nowMs: 1_000, leaseMs: LEASE, freshUntilMs: FORCE }),
      );
      return s.completeRefresh(
        c,
        {
          tokens: tokens(label, { refresh: false, expiresAtMs: 50_000 }),
          providerData: {},
          refreshDueAtMs: 45_000,
        },
        1_100,
        event(ref.connectionId, "refreshed", 1_100),
      );
    }

    const refreshed = (
      label: string,
      options: { refresh?: boolean; expiresAtMs?: number; due?: number } = {},
    ) => ({
      tokens: tokens(label, {
        refresh: options.refresh ?? true,
        expiresAtMs: options.expiresAtMs ?? 50_000,
        scopes: ["chat:write", "users:read"],
      }),
      providerData: { user_id: "U-refreshed" },
      refreshDueAtMs: options.due ?? 45_000,
    });

    describe("migrations and health", () => {
      it("migrates idempotently and answers ping", async () => {
        // The harness migrated already: nothing is left to apply, and saying so is the answer.
        expect(await store.migrate()).toEqual([]);
        expect(await store.migrate()).toEqual([]);
        await expect(store.ping()).resolves.toBeUndefined();
      });
    });

    describe("connections", () => {
      it("creates a connection, reporting it as new, with events", async () => {
        const change = await store.putConnection(connection("T1", [credential("bot", "t1-bot")]), 1_000, [
          event("T1", "imported", 1_000),
        ]);
        expect(change).toMatchObject({ before: null, after: "active" });
        const c = await store.getConnection("T1");
        expect(c).toMatchObject({
          id: "T1",
          provider: "slack",
          status: "active",
          reason: null,
          metadata: { teamName: "team T1" },
          createdAtMs: 1_000,
          updatedAtMs: 1_000,
        });
        expect(c?.credentials).toEqual([
          {
            kind: "bot",
            status: "active",
            reason: null,
            lastError: null,
            tokenType: "bot",
            scopes: ["chat:write"],
            expiresAtMs: 10_000,
            issuedAtMs: 1_000,
            refreshedAtMs: null,
            hasRefreshToken: true,
            failureCount: 0,
            nextAttemptAtMs: null,
            version: expect.any(Number),
            providerData: { bot_user_id: "U-t1-bot" },
          },
        ]);
        expect(JSON.stringify(c)).not.toContain("PLAINTEXT");
        expect((await store.listEvents("T1", { limit: 10 })).map((e) => e.type)).toEqual(["imported"]);
      });

      it("opens the stored tokens of a credential", async () => {
        await seedT1();
        const bot = await store.getCredential(BOT);
        expect(bot?.accessToken.reveal()).toBe("xoxb-access-t1-bot-PLAINTEXT");
        expect(bot?.refreshToken?.reveal()).toBe("xoxe-refresh-t1-bot-PLAINTEXT");
        expect(bot).toMatchObject({ connectionId: "T1", kind: "bot", provider: "slack" });
        expect(Number.isSafeInteger(bot?.version) && (bot?.version ?? 0) > 0).toBe(true);
        expect(bot?.refreshInDoubt).toBe(false);
        expect((await store.listCredentials("T1")).map((c) => c.kind)).toEqual(["bot", "user"]);
        expect(await store.getCredential({ connectionId: "T1", kind: "default" })).toBeNull();
        expect(await store.getCredential({ connectionId: "nope", kind: "bot" })).toBeNull();
        expect(await store.getConnection("nope")).toBeNull();
        expect(await store.listCredentials("nope")).toEqual([]);
      });

      it("replaces a connection: exactly the listed credentials, metadata replaced, versions continue", async () => {
        await seedT1();
        const v1 = (await store.getCredential(BOT))?.version ?? -1;
        await store.setCredentialStatus(
          "T1",
          ["bot"],
          { status: "needs_reauth", reason: "token_revoked", lastError: "token_revoked" },
          2_000,
          [],
        );
        const change = await store.putConnection(
          {
            id: "T1",
            provider: "slack",
            metadata: { other: 1 },
            credentials: [credential("bot", "t1-bot-v2")],
          },
          3_000,
          [event("T1", "reauthorized", 3_000)],
        );
        expect(change).toMatchObject({ before: "needs_reauth", after: "active" });
        const c = await store.getConnection("T1");
        expect(c?.metadata).toEqual({ other: 1 });
        expect(c?.createdAtMs).toBe(1_000);
        expect(c?.updatedAtMs).toBe(3_000);
        expect(c?.credentials.map((x) => [x.kind, x.version, x.status])).toEqual([["bot", v1 + 1, "active"]]);
        expect((await store.getCredential(BOT))?.accessToken.reveal()).toBe(
          "xoxb-access-t1-bot-v2-PLAINTEXT",
        );
        expect(await store.getCredential(USER)).toBeNull();
      });

      // A reconnect lays the install's fields over what is stored at the write: a key written after
      // the caller read the connection (a check filling in team_id) must not be lost to a stale copy.
      it("replaces a connection merging its metadata: stored keys kept, given keys win, shallow", async () => {
        await store.putConnection(
          {
            id: "T1",
            provider: "slack",
            metadata: { customer: "cus_42", team_name: "old", nested: { a: 1 } },
            credentials: [credential("bot", "t1")],
          },
          1_000,
          [],
        );
        await store.updateMetadata("T1", { team_id: "T1" }, 2_000, { onlyMissing: true });
        await store.putConnection(
          {
            id: "T1",
            provider: "slack",
            metadata: { team_name: "new", nested: { b: 2 } },
            credentials: [credential("bot", "t1-v2")],
          },
          3_000,
          [],
          { mergeMetadata: true },
        );
        expect((await store.getConnection("T1"))?.metadata).toEqual({
          customer: "cus_42",
          team_id: "T1",
          team_name: "new",
          nested: { b: 2 },
        });
        // A new connection merges onto nothing.
        await store.putConnection(
          { id: "T9", provider: "slack", metadata: { x: 1 }, credentials: [credential("bot", "t9")] },
          3_000,
          [],
          { mergeMetadata: true },
        );
        expect((await store.getConnection("T9"))?.metadata).toEqual({ x: 1 });
      });

      // JSON has no undefined: a key given as undefined (a caller's `{ customer: input.customer }`) is
      // not given, so the stored value stays, as PostgreSQL's jsonb `||` leaves it.
      it("merging, a key given as undefined leaves the stored value alone on either store", async () => {
        await store.putConnection(
          {
            id: "T1",
            provider: "slack",
            metadata: { customer: "cus_42" },
            credentials: [credential("bot", "t1")],
          },
          1_000,
          [],
        );
        await store.putConnection(
          {
            id: "T1",
            provider: "slack",
            metadata: { customer: undefined, team_name: "new" },
            credentials: [credential("bot", "t1-v2")],
          },
          2_000,
          [],
          { mergeMetadata: true },
        );
        expect((await store.getConnection("T1"))?.metadata).toEqual({ customer: "cus_42", team_name: "new" });
      });

      it("rejects a connection that lists a kind twice, changing nothing", async () => {
        const bad = connection("T1", [credential("bot", "a"), credential("bot", "b")]);
        await expect(store.putConnection(bad, 1_000, [])).rejects.toMatchObject({ code: "invalid_input" });
        expect(await store.getConnection("T1")).toBeNull();
      });

      it("refuses NUL in any text it would store (PostgreSQL cannot), as bad input, changing nothing", async () => {
        const good = () => connection("N1", [credential("bot", "n")]);
        const bad: NewConnection[] = [
          { ...good(), provider: "sl\u0000ck" },
          { ...good(), metadata: { name: "a\u0000b" } },
          { ...good(), metadata: { deep: [{ "k\u0000": 1 }] } },
        ];
        for (const [field, value] of [
          ["providerData", { bot_user_id: "U\u0000" }],
          ["tokens", { ...credential("bot", "n").tokens, tokenType: "bot\u0000" }],
          ["tokens", { ...credential("bot", "n").tokens, scopes: ["chat:write", "x\u0000"] }],
        ] as const) {
          bad.push({ ...good(), credentials: [{ ...credential("bot", "n"), [field]: value }] });
        }
        for (const input of bad) {
          await expect(
            store.putConnection(input, 1_000, []),
            JSON.stringify(input.metadata),
          ).rejects.toMatchObject({
            code: "invalid_input",
          });
        }
        expect(await store.getConnection("N1")).toBeNull();
        await store.putConnection(good(), 1_000, []);
        await expect(store.updateMetadata("N1", { x: "\u0000" }, 2_000)).rejects.toMatchObject({
          code: "invalid_input",
        });
        expect((await store.getConnection("N1"))?.metadata).toEqual(good().metadata);
        // Ids too, on reads and writes that take one: refused, or not found (no such id can exist).
        for (const read of [
          () => store.getConnection("N\u00001"),
          () => store.getCredential({ connectionId: "N\u00001", kind: "bot" }),
          () => store.listEvents("N\u00001", { limit: 5 }),
          () => store.deleteConnection("N\u00001"),
        ]) {
          const outcome = await read().then(
            (value: unknown) => ({ ok: true as const, value }),
            (error: unknown) => ({ ok: false as const, error }),
          );
          if (outcome.ok)
            expect([null, false, true].includes(outcome.value as never) || Array.isArray(outcome.value)).toBe(
              true,
            );
          else expect(outcome.error).toMatchObject({ code: "invalid_input" });
        }
        for (const filter of [
          { provider: "\u0000" },
          { status: "active\u0000" as Status },
          { cursor: "AAAA" },
        ]) {
          await expect(store.listConnections({ limit: 5, ...filter })).rejects.toMatchObject({
            code: "invalid_input",
          });
        }
      });

      it("fences out a refresh in flight when the connection is replaced", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 2_000));
        await store.putConnection(connection("T1", [credential("bot", "reinstalled")]), 3_000, []);
        expect(
          await store.completeRefresh(c, refreshed("late"), 4_000, event("T1", "refreshed", 4_000)),
        ).toBe(false);
        expect((await store.getCredential(BOT))?.accessToken.reveal()).toBe(
          "xoxb-access-reinstalled-PLAINTEXT",
        );
      });

      // A shutdown path and a `finally` may both close the store; the second must not throw.
      it("closes twice without an error, one after the other or both at once", async () => {
        const other = await h.openPeer(testSealer());
        await other.close();
        await expect(other.close()).resolves.toBeUndefined();
        const third = await h.openPeer(testSealer());
        await expect(Promise.all([third.close(), third.close()])).resolves.toEqual([undefined, undefined]);
      });

      it("merges metadata", async () => {
        await seedT1();
        expect(await store.updateMetadata("T1", { plan: "pro" }, 5_000)).toBe(true);
        expect((await store.getConnection("T1"))?.metadata).toEqual({ teamName: "team T1", plan: "pro" });
        expect((await store.getConnection("T1"))?.updatedAtMs).toBe(5_000);
        expect(await store.updateMetadata("nope", { plan: "pro" }, 5_000)).toBe(false);
        // onlyMissing: what is there wins (a check filling in team_id never overwrites one).
        await store.updateMetadata("T1", { plan: "free", team_id: "T1" }, 6_000, { onlyMissing: true });
        expect((await store.getConnection("T1"))?.metadata).toEqual({
          teamName: "team T1",
          plan: "pro",
          team_id: "T1",
        });
      });

      it("records what a check learned of a credential where its provider data has no value, at its version only", async () => {
        await seedT1();
        const learn = store.learnProviderData?.bind(store);
        if (learn === undefined) throw new Error("the store has no learnProviderData");
        const before = await store.getCredential(USER);
        const version = before?.version ?? -1;
        // Another version holds other tokens than the ones checked: nothing is written.
        expect(await learn(USER, { user_id: "U-checked" }, version + 1)).toBe(false);
        expect((await store.getCredential(USER))?.providerData).toEqual({ bot_user_id: "U-t1-user" });
        expect(await learn({ connectionId: "nope", kind: "user" }, { user_id: "U-checked" }, version)).toBe(
          false,
        );
        expect(await learn(USER, { user_id: "U-checked" }, version)).toBe(true);
        const learned = await store.getCredential(USER);
        expect(learned?.providerData).toEqual({ bot_user_id: "U-t1-user", user_id: "U-checked" });
        // The tokens did not change: the version (which fences verdicts and caches) and the rest stay.
        expect(learned).toMatchObject({
          version,
          status: "active",
          expiresAtMs: before?.expiresAtMs,
          issuedAtMs: before?.issuedAtMs,
          claimUntilMs: null,
        });
        expect(learned?.accessToken.reveal()).toBe(before?.accessToken.reveal());
        // A value there is never overwritten (it came from the provider's install or refresh answer);
        // a key given beside it is still recorded.
        expect(await learn(USER, { user_id: "U-other", team_id: "T1" }, version)).toBe(true);
        expect((await store.getCredential(USER))?.providerData).toEqual({
          bot_user_id: "U-t1-user",
          user_id: "U-checked",
          team_id: "T1",
        });
        expect(await learn(USER, { user_id: "U-other" }, version)).toBe(false);
        // A null says nothing: it is filled in.
        const c = claimOf(await claim(USER, "a", 2_000));
        await store.completeRefresh(
          c,
          { ...refreshed("r-user"), providerData: { user_id: null } },
          2_000,
          event("T1", "refreshed", 2_000, "user"),
        );
        const refreshedVersion = (await store.getCredential(USER))?.version ?? -1;
        expect(await learn(USER, { user_id: "U-checked" }, version)).toBe(false);
        expect(await learn(USER, { user_id: "U-checked" }, refreshedVersion)).toBe(true);
        expect((await store.getCredential(USER))?.providerData).toMatchObject({ user_id: "U-checked" });
        // The other credential is untouched throughout, and NUL is bad input that changes nothing.
        expect((await store.getCredential(BOT))?.providerData).toEqual({ bot_user_id: "U-t1-bot" });
        await expect(
          learn(BOT, { user_id: "U\u0000" }, (await store.getCredential(BOT))?.version ?? -1),
        ).rejects.toMatchObject({ code: "invalid_input" });
        expect((await store.getCredential(BOT))?.providerData).toEqual({ bot_user_id: "U-t1-bot" });
      });

      it("deletes a connection with its credentials and events", async () => {
        await seedT1();
        await store.putConnection(connection("T2", [credential("bot", "t2")]), 1_000, [
          event("T2", "imported", 1_000),
        ]);
        expect(await store.deleteConnection("T1")).toBe(true);
        expect(await store.getConnection("T1")).toBeNull();
        expect(await store.getCredential(BOT)).toBeNull();
        expect(await store.listEvents("T1", { limit: 10 })).toEqual([]);
        expect(await store.listEvents("T2", { limit: 10 })).toHaveLength(1);
        expect(await claimDue("r", 100_000)).toHaveLength(1);
        expect(await store.deleteConnection("T1")).toBe(false);
      });

      it("deletes one credential: the rest kept, the status rolled up from them, the episode it ends recorded", async () => {
        await seedT1();
        const deleteCredential = store.deleteCredential?.bind(store);
        if (deleteCredential === undefined) throw new Error("the store has no deleteCredential");
        await store.setCredentialStatus(
          "T1",
          ["user"],
          { status: "needs_reauth", reason: "token_revoked", lastError: "token_revoked" },
          1_500,
          [event("T1", "revoked", 1_500, "user")],
        );
        expect(await store.getConnection("T1")).toMatchObject({ status: "needs_reauth" });
        const other = await peer();
        await eventually(
          async () => (await other.getCredential(USER))?.status,
          (s) => s === "needs_reauth",
          { what: "the peer to read the dead user credential" },
        );
        const stamp = other.changeStamp(USER);
        expect(
          await deleteCredential(USER, 2_000, {
            connectionId: "T1",
            kind: "user",
            type: "deleted",
            atMs: 2_000,
            data: { revoked: true },
          }),
        ).toEqual({ kind: "deleted", change: { before: "needs_reauth", after: "active", reason: null } });
        expect(await store.getCredential(USER)).toBeNull();
        expect(await store.getConnection("T1")).toMatchObject({
          status: "active",
          reason: null,
          updatedAtMs: 2_000,
          credentials: [expect.objectContaining({ kind: "bot", status: "active" })],
        });
        expect((await store.getConnection("T1"))?.credentials).toHaveLength(1);
        const events = await store.listEvents("T1", { limit: 10 });
        expect(events.map((e) => [e.type, e.kind])).toEqual([
          ["recovered", "user"],
          ["deleted", "user"],
          ["needs_reauth", "user"],
          ["revoked", "user"],
          ["imported", "bot"],
        ]);
        expect(events[1]?.data).toEqual({ revoked: true });
        // Off the schedule with its row; another process sees the change.
        expect((await claimDue("r", 100_000)).map((d) => d.ref)).toEqual([BOT]);
        await eventually(
          () => other.changeStamp(USER),
          (s) => s !== stamp,
          { what: "the peer's stamp to change after the delete" },
        );
        expect(await other.getCredential(USER)).toBeNull();
      });

      it("deletes no last credential, nothing missing and nothing at another version, changing nothing", async () => {
        await seedT1();
        await store.putConnection(connection("T2", [credential("bot", "t2")]), 1_000, [
          event("T2", "imported", 1_000),
        ]);
        const deleteCredential = store.deleteCredential?.bind(store);
        if (deleteCredential === undefined) throw new Error("the store has no deleteCredential");
        const deleted = (ref: CredentialRef) => ({
          connectionId: ref.connectionId,
          kind: ref.kind,
          type: "deleted" as const,
          atMs: 2_000,
        });
        const T2: CredentialRef = { connectionId: "T2", kind: "bot" };
        expect(await deleteCredential(T2, 2_000, deleted(T2))).toEqual({ kind: "last_credential" });
        const DEFAULT: CredentialRef = { connectionId: "T1", kind: "default" };
        expect(await deleteCredential(DEFAULT, 2_000, deleted(DEFAULT))).toEqual({ kind: "not_found" });
        const NOPE: CredentialRef = { connectionId: "nope", kind: "bot" };
        expect(await deleteCredential(NOPE, 2_000, deleted(NOPE))).toEqual({ kind: "not_found" });
        const version = (await store.getCredential(USER))?.version ?? 0;
        expect(await deleteCredential(USER, 2_000, deleted(USER), { ifVersion: version + 1 })).toEqual({
          kind: "changed",
        });
        expect(await store.getCredential(T2)).not.toBeNull();
        expect(await store.getCredential(USER)).not.toBeNull();
        expect((await store.listEvents("T1", { limit: 10 })).map((e) => e.type)).toEqual(["imported"]);
        expect((await store.listEvents("T2", { limit: 10 })).map((e) => e.type)).toEqual(["imported"]);
        // At the version it is at, it goes.
        expect(await deleteCredential(USER, 2_000, deleted(USER), { ifVersion: version })).toMatchObject({
          kind: "deleted",
        });
      });

      it("lists with filters and stable cursor paging, credentials attached, no secrets", async () => {
        for (const id of ["C5", "C1", "C4", "C2", "C3"]) {
          await store.putConnection(
            connection(
              id,
              [credential("bot", id), credential("user", `${id}u`)],
              id === "C4" ? "github" : "slack",
            ),
            1_000,
            [],
          );
        }
        await store.setCredentialStatus(
          "C2",
          ["user"],
          { status: "refresh_failing", reason: "rate_limited", lastError: "ratelimited" },
          2_000,
          [],
        );

        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const page: Awaited<ReturnType<Store["listConnections"]>> = await store.listConnections({
            limit: 2,
            ...(cursor === null ? {} : { cursor }),
          });
          expect(page.items.length).toBeLessThanOrEqual(2);
          for (const item of page.items) {
            expect(item.credentials.map((x) => x.kind)).toEqual(["bot", "user"]);
            seen.push(item.id);
          }
          cursor = page.nextCursor;
        } while (cursor !== null);
        expect(seen).toEqual(["C1", "C2", "C3", "C4", "C5"]);

        const slack = await store.listConnections({ provider: "slack", limit: 10 });
        expect(slack.items.map((c) => c.id)).toEqual(["C1", "C2", "C3", "C5"]);
        expect(slack.nextCursor).toBeNull();
        const failing = await store.listConnections({ status: "refresh_failing", limit: 10 });
        expect(failing.items.map((c) => [c.id, c.reason])).toEqual([["C2", "rate_limited"]]);
        const both = await store.listConnections({ provider: "github", status: "active", limit: 10 });
        expect(both.items.map((c) => c.id)).toEqual(["C4"]);
        expect(JSON.stringify(slack)).not.toMatch(/PLAINTEXT|v1\./);

        await expect(store.listConnections({ limit: 0 })).rejects.toMatchObject({ code: "invalid_input" });
        await expect(store.listConnections({ limit: 2, cursor: "%%%" })).rejects.toMatchObject({
          code: "invalid_input",
        });
      });
    });

    describe("findConnectionsByInstallation", () => {
      const put = (id: string, metadata: Record<string, unknown>, provider = "slack") =>
        store.putConnection({ id, provider, metadata, credentials: [credential("bot", id)] }, 1_000, []);
      const find = (q: { teamId?: string; enterpriseId?: string; limit?: number }) =>
        store.findConnectionsByInstallation({ provider: "slack", limit: 10, ...q });

      it("stores a connection whose metadata holds an absurdly long team_id (metadata is free-form)", async () => {
        // PostgreSQL refuses a B-tree entry over 2704 bytes: an index on every team_id made this a 5xx.
        await put("long", { team_id: "T".repeat(4_000), enterprise_id: "E".repeat(4_000) });
        await put("short", { team_id: "T1" });
        expect(await find({ teamId: "T1" })).toEqual(["short"]);
      });

      it("finds a workspace's connections by team_id and an org-wide install's by enterprise_id, ascending", async () => {
        await put("conn2", { team_id: "T1" }); // imported without an id
        await put("conn1", { team_id: "T1", enterprise_id: "E1" }); // a workspace of org E1: not the org
        await put("T2", { team_id: "T2" });
        await put("orgflow", { team_id: null, enterprise_id: "E1", is_enterprise_install: true }); // install flow
        await put("orgchecked", { team_id: "E1", enterprise_id: "E1" }); // auth.test of an org-wide token
        await put("orgimported", { enterprise_id: "E1" });
        await put("github1", { team_id: "T1" }, "github");
        await put("plain", { team_name: "T1" });
        expect(await find({ teamId: "T1" })).toEqual(["conn1", "conn2"]);
        expect(await find({ enterpriseId: "E1" })).toEqual(["orgchecked", "orgflow", "orgimported"]);
        expect(await find({ teamId: "T2", enterpriseId: "E1" })).toEqual([
          "T2",
          "orgchecked",
          "orgflow",
          "orgimported",
        ]);
        expect(await find({ teamId: "T1", enterpriseId: "E1", limit: 3 })).toEqual([
          "conn1",
          "conn2",
          "orgchecked",
        ]);
        expect(await find({ teamId: "T9", enterpriseId: "E9" })).toEqual([]);
        expect(await find({ teamId: "E1" })).toEqual(["orgchecked"]);
        expect(
          await store.findConnectionsByInstallation({ provider: "github", teamId: "T1", limit: 10 }),
        ).toEqual(["github1"]);
      });

      it("follows metadata as it changes: a team_id a check fills in, a replaced or deleted connection", async () => {
        await put("mine", { team_name: "Acme" });
        expect(await find({ teamId: "T1" })).toEqual([]);
        await store.updateMetadata("mine", { team_id: "T1" }, 2_000, { onlyMissing: true });
        expect(await find({ teamId: "T1" })).toEqual(["mine"]);
        await put("mine", { team_id: "T2" });
        expect(await find({ teamId: "T1" })).toEqual([]);
        expect(await find({ teamId: "T2" })).toEqual(["mine"]);
        await store.deleteConnection("mine");
        expect(await find({ teamId: "T2" })).toEqual([]);
      });

      it("refuses a query naming no installation, NUL, or a bad limit, as bad input", async () => {
        await put("conn1", { team_id: "T1" });
        for (const bad of [
          { provider: "slack", limit: 10 },
          { provider: "slack", teamId: "", enterpriseId: "", limit: 10 },
          { provider: "", teamId: "T1", limit: 10 },
          { provider: "sl\u0000ck", teamId: "T1", limit: 10 },
          { provider: "slack", teamId: "T\u00001", limit: 10 },
          { provider: "slack", enterpriseId: "E\u00001", limit: 10 },
          { provider: "slack", teamId: "T1", limit: 0 },
          { provider: "slack", teamId: "T1", limit: 1.5 },
        ]) {
          await expect(store.findConnectionsByInstallation(bad), JSON.stringify(bad)).rejects.toMatchObject({
            code: "invalid_input",
          });
        }
      });
    });

    describe("claimRefresh", () => {
      it("grants a claim once until it completes or its lease lapses", async () => {
        await seedT1();
        const first = await claim(BOT, "a", 1_000);
        expect(first.kind).toBe("claimed");
        const c = claimOf(first);
        expect(c.owner).toBe("a");
        expect(c.ref).toEqual(BOT);
        expect(c.previousAttemptLost).toBe(false);
        if (first.kind === "claimed")
          expect(first.credential.refreshToken?.reveal()).toBe("xoxe-refresh-t1-bot-PLAINTEXT");

        expect(await claim(BOT, "b", 1_001)).toMatchObject({ kind: "held_by_other", untilMs: 1_000 + LEASE });
        // The other credential of the same connection is claimable on its own.
        expect((await claim(USER, "b", 1_001)).kind).toBe("claimed");
        // At the exact lapse instant the lease has run out.
        const retaken = claimOf(await claim(BOT, "b", 1_000 + LEASE));
        expect(retaken.owner).toBe("b");
        expect(retaken.claimId).not.toBe(c.claimId);
      });

      it("records the refresh as started, so a lapsed claim reports a lost attempt", async () => {
        await seedT1();
        claimOf(await claim(BOT, "crashed", 1_000));
        // Committed before the claim returned: another process sees the journal entry.
        expect((await (await peer()).getCredential(BOT))?.refreshInDoubt).toBe(true);
        const next = claimOf(await claim(BOT, "b", 1_000 + LEASE + 1));
        expect(next.previousAttemptLost).toBe(true);
      });

      it("a claim that sends nothing leaves the journal as it was: a holder that dies reports no lost attempt", async () => {
        await seedT1();
        const quiet = await store.claimRefresh(BOT, {
          owner: "deleting",
          nowMs: 1_000,
          leaseMs: LEASE,
          freshUntilMs: FORCE,
          sends: false,
        });
        expect(quiet.kind).toBe("claimed");
        expect((await (await peer()).getCredential(BOT))?.refreshInDoubt).toBe(false);
        expect(await claim(BOT, "b", 1_001)).toMatchObject({ kind: "held_by_other" });
        const next = claimOf(await claim(BOT, "b", 1_000 + LEASE + 1));
        expect(next.previousAttemptLost).toBe(false);
        // One that does send, and dies, is still on record after a quiet claim came and went.
        const lapsedQuiet = await store.claimRefresh(BOT, {
          owner: "deleting",
          nowMs: 1_000 + 3 * LEASE,
          leaseMs: LEASE,
          freshUntilMs: FORCE,
          sends: false,
        });
        expect(lapsedQuiet.kind).toBe("claimed");
        expect(claimOf(await claim(BOT, "c", 1_000 + 4 * LEASE + 1)).previousAttemptLost).toBe(true);
      });

      it("answers already_fresh when another process refreshed meanwhile; MAX_SAFE_INTEGER forces", async () => {
        await seedT1();
        const fresh = await claim(BOT, "a", 1_000, 10_000);
        expect(fresh.kind).toBe("already_fresh");
        if (fresh.kind === "already_fresh")
          expect(fresh.credential.accessToken.reveal()).toBe("xoxb-access-t1-bot-PLAINTEXT");
        expect((await claim(BOT, "a", 1_000, 10_001)).kind).toBe("claimed");
        await store.releaseClaim(claimOf(await claim(USER, "a", 1_000, FORCE)));
        expect((await claim(USER, "a", 1_000, FORCE)).kind).toBe("claimed");
        // A token without expiry is never reported already_fresh.
        await store.putConnection(
          connection("T9", [credential("default", "t9", { expiresAtMs: null })]),
          1_000,
          [],
        );
        expect((await claim({ connectionId: "T9", kind: "default" }, "a", 1_000, 0)).kind).toBe("claimed");
      });

      it("answers not_refreshable without a refresh token or when dead, and not_found", async () => {
        await store.putConnection(
          connection("T1", [credential("bot", "t1", { refresh: false }), credential("user", "t1u")]),
          1_000,
          [],
        );
        const none = await claim(BOT, "a", 1_000);
        expect(none.kind).toBe("not_refreshable");
        if (none.kind === "not_refreshable") expect(none.credential.refreshToken).toBeNull();
        await store.setCredentialStatus(
          "T1",
          ["user"],
          { status: "needs_reauth", reason: "token_revoked", lastError: null },
          1_000,
          [],
        );
        expect((await claim(USER, "a", 1_000)).kind).toBe("not_refreshable");
        expect(await claim({ connectionId: "nope", kind: "bot" }, "a", 1_000)).toEqual({ kind: "not_found" });
      });

      it("renews only its own claim", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 1_000));
        expect(await store.renewClaim(c, 20_000, LEASE)).toBe(true);
        expect(await claim(BOT, "b", 1_000 + LEASE)).toMatchObject({
          kind: "held_by_other",
          untilMs: 20_000 + LEASE,
        });
        const stale = { ...c, claimId: "not-mine" };
        expect(await store.renewClaim(stale, 21_000, LEASE)).toBe(false);
        // A renewed claim moves its run time too: it is not due before the new lease ends.
        expect(await claimDue("r", 20_000 + LEASE - 1)).toEqual([expect.objectContaining({ ref: USER })]);
      });

      it("releases a claim: claimable at once, nothing reported lost, schedule restored", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 1_000));
        await store.releaseClaim(c);
        const again = claimOf(await claim(BOT, "b", 1_001));
        expect(again.previousAttemptLost).toBe(false);
        await store.releaseClaim(again);
        expect((await store.getCredential(BOT))?.refreshInDoubt).toBe(false);
        expect(await claimDue("r", 7_999)).toEqual([]);
        expect((await claimDue("r", 8_000)).map((d) => d.ref)).toEqual([BOT]);
      });

      it("keeps an earlier lost attempt on record across a release", async () => {
        await seedT1();
        claimOf(await claim(BOT, "crashed", 1_000));
        const recovering = claimOf(await claim(BOT, "b", 1_000 + LEASE));
        expect(recovering.previousAttemptLost).toBe(true);
        await store.releaseClaim(recovering);
        expect(claimOf(await claim(BOT, "c", 1_000 + LEASE + 1)).previousAttemptLost).toBe(true);
        // A stale release changes nothing.
        await store.releaseClaim(recovering);
        expect((await claim(BOT, "d", 1_000 + LEASE + 2)).kind).toBe("held_by_other");
      });
    });

    describe("completeRefresh", () => {
      it("completes a batch item by item: each fenced on its own claim, all persisted together", async () => {
        await seedT1();
        const bot = claimOf(await claim(BOT, "a", 1_000));
        const user = claimOf(await claim(USER, "a", 1_000));
        const stale = { ...bot, claimId: "not-mine" };
        const done = await store.completeRefreshes([
          { claim: bot, result: refreshed("b1"), nowMs: 1_500, event: event("T1", "refreshed", 1_500) },
          { claim: stale, result: refreshed("x"), nowMs: 1_500, event: event("T1", "refreshed", 1_500) },
          { claim: user, result: refreshed("u1"), nowMs: 1_500, event: event("T1", "refreshed", 1_500) },
        ]);
        expect(done.map((o) => o.kind)).toEqual(["stored", "fenced", "stored"]);
        expect((await store.getCredential(BOT))?.accessToken.reveal()).toBe("xoxb-access-b1-PLAINTEXT");
        expect((await store.getCredential(USER))?.accessToken.reveal()).toBe("xoxb-access-u1-PLAINTEXT");
        expect(
          (await store.listEvents("T1", { limit: 10 })).filter((e) => e.type === "refreshed"),
        ).toHaveLength(2);
        expect(await store.completeRefreshes([])).toEqual([]);
      });

      // Found by review: one statement (PostgreSQL) or one transaction (SQLite) per batch, so a fractional
      // expiry in one item rolled back every item beside it, their refresh tokens spent already.
      it("fails an item it cannot keep on its own, and stores the others of its batch", async () => {
        await seedT1();
        const bot = claimOf(await claim(BOT, "a", 1_000));
        const user = claimOf(await claim(USER, "a", 1_000));
        const done = await store.completeRefreshes([
          {
            claim: bot,
            result: refreshed("b1", { expiresAtMs: 50_000.5 }),
            nowMs: 1_500,
            event: event("T1", "refreshed", 1_500),
          },
          { claim: user, result: refreshed("u1"), nowMs: 1_500, event: event("T1", "refreshed", 1_500) },
          {
            claim: { ...bot, claimId: "other" },
            result: { ...refreshed("x"), providerData: { team_name: "A\u0000B" } },
            nowMs: 1_500,
            event: event("T1", "refreshed", 1_500),
          },
        ]);
        expect(done.map((o) => o.kind)).toEqual(["failed", "stored", "failed"]);
        expect(done[0]).toMatchObject({ error: { code: "invalid_input" } });
        expect((await store.getCredential(USER))?.accessToken.reveal()).toBe("xoxb-access-u1-PLAINTEXT");
        // The refused item changed nothing: its claim still holds, its token is the old one.
        expect((await claim(BOT, "b", 1_600)).kind).toBe("held_by_other");
        expect((await store.getCredential(BOT))?.accessToken.reveal()).not.toContain("b1");
      });

      it("reports the connection's status change per item: the one that ends an episode, once", async () => {
        await seedT1();
        const failing = {
          status: "refresh_failing" as const,
          reason: "provider_unavailable" as const,
          lastError: "503",
          nextAttemptAtMs: 2_000,
          inDoubt: false,
        };
        for (const ref of [BOT, USER]) {
          await store.failRefresh(
            claimOf(await claim(ref, "a", 1_000)),
            failing,
            1_500,
            event("T1", "refresh_failed", 1_500),
          );
        }
        const bot = claimOf(await claim(BOT, "a", 2_000));
        const user = claimOf(await claim(USER, "a", 2_000));
        const outcomes = await store.completeRefreshes([
          { claim: bot, result: refreshed("b1"), nowMs: 2_500, event: event("T1", "refreshed", 2_500) },
          { claim: user, result: refreshed("u1"), nowMs: 2_500, event: event("T1", "refreshed", 2_500) },
        ]);
        // The first leaves the connection failing (its user credential still is); the second ends it.
        expect(outcomes).toEqual([
          {
            kind: "stored",
            change: { before: "refresh_failing", after: "refresh_failing", reason: "provider_unavailable" },
          },
          { kind: "stored", change: { before: "refresh_failing", after: "active", reason: null } },
        ]);
        // An active credential's refresh changes nothing.
        const again = claimOf(await claim(BOT, "b", 3_000));
        expect(
          await store.completeRefreshes([
            { claim: again, result: refreshed("b2"), nowMs: 3_100, event: event("T1", "refreshed", 3_100) },
          ]),
        ).toEqual([{ kind: "stored", change: null }]);
      });

      it("persists the new tokens, clears claim, journal and failures, bumps version, appends the event", async () => {
        await seedT1();
        const v1 = (await store.getCredential(BOT))?.version ?? -1;
        const failed = claimOf(await claim(BOT, "a", 1_000));
        await store.failRefresh(
          failed,
          {
            status: "refresh_failing",
            reason: "provider_unavailable",
            lastError: "503",
            nextAttemptAtMs: 2_000,
            inDoubt: false,
          },
          1_500,
          event("T1", "refresh_failed", 1_500),
        );
        const c = claimOf(await claim(BOT, "a", 2_000));
        expect(await store.completeRefresh(c, refreshed("r1"), 2_500, event("T1", "refreshed", 2_500))).toBe(
          true,
        );

        const bot = await store.getCredential(BOT);
        expect(bot?.accessToken.reveal()).toBe("xoxb-access-r1-PLAINTEXT");
        expect(bot?.refreshToken?.reveal()).toBe("xoxe-refresh-r1-PLAINTEXT");
        expect(bot).toMatchObject({
          status: "active",
          reason: null,
          lastError: null,
          version: v1 + 1,
          failureCount: 0,
          nextAttemptAtMs: null,
          refreshInDoubt: false,
          expiresAtMs: 50_000,
          issuedAtMs: 2_500,
          refreshedAtMs: 2_500,
          scopes: ["chat:write", "users:read"],
          providerData: { bot_user_id: "U-t1-bot", user_id: "U-refreshed" },
        });
        expect((await store.getConnection("T1"))?.status).toBe("active");
        // The failing episode ends in the same transaction: its `recovered` follows the refresh.
        expect((await store.listEvents("T1", { limit: 2 })).map((e) => e.type)).toEqual([
          "recovered",
          "refreshed",
        ]);
        // Claim cleared: the next claimer gets it at once, with nothing lost.
        expect(claimOf(await claim(BOT, "b", 2_600)).previousAttemptLost).toBe(false);
      });

      it("merges provider data as a shallow spread, whether the store takes its one-statement path or not", async () => {
        await seedT1();
        const v1 = (await store.getCredential(BOT))?.version ?? -1;
        const complete = async (nowMs: number, providerData: Record<string, unknown>) => {
          const c = claimOf(await claim(BOT, "a", nowMs));
          const result = { ...refreshed(`r${nowMs}`), providerData };
          const stampBefore = store.changeStamp(BOT);
          expect(await store.completeRefresh(c, result, nowMs, event("T1", "refreshed", nowMs))).toBe(true);
          expect(store.changeStamp(BOT)).not.toBe(stampBefore);
          return store.getCredential(BOT);
        };
        // Nested and null values: a nested object is replaced whole, a null is kept as null.
        expect(
          (await complete(1_000, { team: { id: "T1", name: "A" }, user_id: null }))?.providerData,
        ).toEqual({
          bot_user_id: "U-t1-bot",
          team: { id: "T1", name: "A" },
          user_id: null,
        });
        expect((await complete(2_000, { team: { id: "T1" } }))?.providerData).toEqual({
          bot_user_id: "U-t1-bot",
          team: { id: "T1" },
          user_id: null,
        });
        // Flat values (the common reply): merged key by key.
        const flat = await complete(3_000, { user_id: "U2", app_id: "A1" });
        expect(flat?.providerData).toEqual({
          bot_user_id: "U-t1-bot",
          team: { id: "T1" },
          user_id: "U2",
          app_id: "A1",
        });
        expect(flat).toMatchObject({
          version: v1 + 3,
          status: "active",
          refreshedAtMs: 3_000,
          claimUntilMs: null,
        });
        expect(flat?.accessToken.reveal()).toBe("xoxb-access-r3000-PLAINTEXT");
        expect(
          (await store.listEvents("T1", { limit: 10 })).filter((e) => e.type === "refreshed"),
        ).toHaveLength(3);
      });

      it("keeps the previous refresh token when the reply carried none (invariant 2)", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 1_000));
        expect(
          await store.completeRefresh(
            c,
            refreshed("r1", { refresh: false }),
            1_100,
            event("T1", "refreshed", 1_100),
          ),
        ).toBe(true);
        const bot = await store.getCredential(BOT);
        expect(bot?.accessToken.reveal()).toBe("xoxb-access-r1-PLAINTEXT");
        expect(bot?.refreshToken?.reveal()).toBe("xoxe-refresh-t1-bot-PLAINTEXT");
      });

      it("schedules the next refresh at refreshDueAtMs", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 1_000));
        await store.completeRefresh(
          c,
          refreshed("r1", { due: 45_000 }),
          1_100,
          event("T1", "refreshed", 1_100),
        );
        const before = await claimDue("r", 44_999);
        expect(before.map((d) => d.ref)).toEqual([USER]);
        expect((await claimDue("r", 45_000)).map((d) => d.ref)).toEqual([BOT]);
      });

      it("is fenced out after the claim lapsed and was taken over: false, nothing changed", async () => {
        await seedT1();
        const v1 = (await store.getCredential(BOT))?.version ?? -1;
        const slow = claimOf(await claim(BOT, "slow", 1_000));
        const winner = claimOf(await claim(BOT, "fast", 1_000 + LEASE));
        expect(
          await store.completeRefresh(slow, refreshed("slow"), 40_000, event("T1", "refreshed", 40_000)),
        ).toBe(false);
        const bot = await store.getCredential(BOT);
        expect(bot?.accessToken.reveal()).toBe("xoxb-access-t1-bot-PLAINTEXT");
        expect(bot?.version).toBe(v1);
        expect(await store.listEvents("T1", { limit: 10 })).toHaveLength(1);
        expect(
          await store.completeRefresh(winner, refreshed("fast"), 40_001, event("T1", "refreshed", 40_001)),
        ).toBe(true);
        // A second completion under the same (now cleared) claim is fenced too.
        expect(
          await store.completeRefresh(winner, refreshed("again"), 40_002, event("T1", "refreshed", 40_002)),
        ).toBe(false);
        expect((await store.getCredential(BOT))?.accessToken.reveal()).toBe("xoxb-access-fast-PLAINTEXT");
      });

      it("setCredentialStatus with ifVersions changes only credentials still at that version", async () => {
        await seedT1();
        const v = (await store.getCredential(BOT))?.version ?? -1;
        const c = claimOf(await claim(BOT, "a", 1_000));
        await store.completeRefresh(c, refreshed("rotated"), 1_100, event("T1", "refreshed", 1_100));
        const dead = { status: "needs_reauth" as const, reason: "token_revoked" as const, lastError: "x" };
        const stale = await store.setCredentialStatus(
          "T1",
          ["bot"],
          dead,
          1_200,
          [event("T1", "checked", 1_200)],
          { bot: v }, // the verdict was about the token before the rotation
        );
        expect(stale).toBeNull();
        expect((await store.getCredential(BOT))?.status).toBe("active");
        expect((await store.listEvents("T1", { limit: 50 })).map((e) => e.type)).not.toContain("checked");
        const current = (await store.getCredential(BOT))?.version ?? -1;
        expect(current).toBe(v + 1);
        await store.setCredentialStatus("T1", ["bot"], dead, 1_300, [event("T1", "checked", 1_300)], {
          bot: current,
        });
        expect((await store.getCredential(BOT))?.status).toBe("needs_reauth");
      });

      it("setCredentialStatus with ifIssuedBeforeMs spares a credential issued since, decided under the lock", async () => {
        await seedT1();
        const issued = (await store.getCredential(BOT))?.issuedAtMs ?? -1;
        const dead = { status: "needs_reauth" as const, reason: "app_uninstalled" as const, lastError: "x" };
        // A signal from before the credential was issued: nothing changes, nothing is recorded.
        expect(await store.setCredentialStatus("T1", "all", dead, 1_200, [], undefined, issued)).toBeNull();
        expect((await store.getCredential(BOT))?.status).toBe("active");
        // A refresh (a new version, issued at 1_100) before a signal at 1_150: still marked.
        const c = claimOf(await claim(BOT, "a", 1_100));
        await store.completeRefresh(c, refreshed("rotated"), 1_100, event("T1", "refreshed", 1_100));
        expect((await store.getCredential(BOT))?.issuedAtMs).toBe(1_100);
        const change = await store.setCredentialStatus("T1", ["bot"], dead, 1_200, [], undefined, 1_150);
        expect(change).toMatchObject({ after: "needs_reauth" });
        expect((await store.getCredential(BOT))?.status).toBe("needs_reauth");
      });

      // Found by review: versions restarted at 1 when a connection was deleted and imported again (at the
      // same instant here, as a frozen clock would have it), so a verdict about the deleted connection's
      // token landed on the new connection's.
      it("never gives a connection imported again after a delete a version a verdict about the old one names", async () => {
        await seedT1();
        const old = (await store.getCredential(BOT))?.version ?? -1;
        const dead = { status: "needs_reauth" as const, reason: "token_revoked" as const, lastError: "x" };
        for (let round = 0; round < 20; round++) {
          await store.deleteConnection("T1");
          await seedT1();
          const verdict = await store.setCredentialStatus("T1", ["bot"], dead, 1_000, [], { bot: old });
          expect(verdict).toBeNull();
          expect((await store.getCredential(BOT))?.status).toBe("active");
        }
      });

      it("keeps app_uninstalled against a later dead verdict, which changes nothing and records nothing", async () => {
        await seedT1();
        const dead = (reason: "app_uninstalled" | "token_revoked") => ({
          status: "needs_reauth" as const,
          reason,
          lastError: reason,
        });
        await store.setCredentialStatus("T1", "all", dead("app_uninstalled"), 1_200, [
          event("T1", "uninstalled", 1_200),
        ]);
        const late = await store.setCredentialStatus("T1", ["bot"], dead("token_revoked"), 1_300, [
          event("T1", "revoked", 1_300),
        ]);
        expect(late).toBeNull();
        expect(await store.getCredential(BOT)).toMatchObject({
          status: "needs_reauth",
          reason: "app_uninstalled",
        });
        expect((await store.getConnection("T1"))?.reason).toBe("app_uninstalled");
        expect((await store.listEvents("T1", { limit: 50 })).map((e) => e.type)).not.toContain("revoked");
        // The other way round, the uninstall takes over the reason.
        await store.putConnection(connection("T2", [credential("bot", "t2-bot")]), 1_000, []);
        await store.setCredentialStatus("T2", "all", dead("token_revoked"), 1_200, []);
        await store.setCredentialStatus("T2", "all", dead("app_uninstalled"), 1_300, []);
        expect((await store.getConnection("T2"))?.reason).toBe("app_uninstalled");
      });

      it("is fenced out after setCredentialStatus: the dead credential stays dead", async () => {
        await seedT1();
        const v1 = (await store.getCredential(BOT))?.version ?? -1;
        const c = claimOf(await claim(BOT, "a", 1_000));
        await store.setCredentialStatus(
          "T1",
          "all",
          { status: "needs_reauth", reason: "app_uninstalled", lastError: null },
          1_500,
          [event("T1", "uninstalled", 1_500, null)],
        );
        expect(
          await store.completeRefresh(c, refreshed("late"), 2_000, event("T1", "refreshed", 2_000)),
        ).toBe(false);
        expect(
          await store.failRefresh(
            c,
            {
              status: "refresh_failing",
              reason: "provider_unavailable",
              lastError: "x",
              nextAttemptAtMs: 3_000,
              inDoubt: false,
            },
            2_000,
            event("T1", "refresh_failed", 2_000),
          ),
        ).toBeNull();
        const bot = await store.getCredential(BOT);
        expect(bot).toMatchObject({ status: "needs_reauth", reason: "app_uninstalled", version: v1 });
        expect(bot?.accessToken.reveal()).toBe("xoxb-access-t1-bot-PLAINTEXT");
      });
    });

    describe("failRefresh and status", () => {
      it("records a transient failure with backoff and reports the status change", async () => {
        await seedT1();
        const v1 = (await store.getCredential(BOT))?.version ?? -1;
        const c = claimOf(await claim(BOT, "a", 1_000));
        const change = await store.failRefresh(
          c,
          {
            status: "refresh_failing",
            reason: "rate_limited",
            lastError: "ratelimited",
            nextAttemptAtMs: 61_000,
            inDoubt: false,
          },
          1_100,
          event("T1", "refresh_failed", 1_100),
        );
        expect(change).toMatchObject({ before: "active", after: "refresh_failing" });
        expect(await store.getCredential(BOT)).toMatchObject({
          status: "refresh_failing",
          reason: "rate_limited",
          lastError: "ratelimited",
          failureCount: 1,
          nextAttemptAtMs: 61_000,
          refreshInDoubt: false,
          version: v1,
        });
        expect(await store.getConnection("T1")).toMatchObject({
          status: "refresh_failing",
          reason: "rate_limited",
        });
        // In backoff: not due before nextAttemptAtMs, even though the due time (8s) has passed.
        const user = await claimDue("r", 60_999);
        expect(user.map((d) => d.ref)).toEqual([USER]);
        const bot = await claimDue("r", 61_000);
        expect(bot.map((d) => d.ref)).toEqual([BOT]);
        // The journal was closed: the failed attempt's outcome is known, nothing was lost.
        expect(bot[0]?.previousAttemptLost).toBe(false);
        const again = user[0] as RefreshClaim;
        expect(
          await store.failRefresh(
            again,
            {
              status: "refresh_failing",
              reason: "rate_limited",
              lastError: "x",
              nextAttemptAtMs: 80_000,
              inDoubt: false,
            },
            61_001,
            event("T1", "refresh_failed", 61_001),
          ),
        ).toMatchObject({ before: "refresh_failing", after: "refresh_failing" });
        expect((await store.getCredential(USER))?.failureCount).toBe(1);
      });

      it("keeps the journal open when the outcome is in doubt", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 1_000));
        await store.failRefresh(
          c,
          {
            status: "refresh_failing",
            reason: "provider_unavailable",
            lastError: "ETIMEDOUT",
            nextAttemptAtMs: 2_000,
            inDoubt: true,
          },
          1_500,
          event("T1", "refresh_failed", 1_500),
        );
        expect((await store.getCredential(BOT))?.refreshInDoubt).toBe(true);
        expect(claimOf(await claim(BOT, "b", 2_000)).previousAttemptLost).toBe(true);
      });

      it("takes a dead credential off the schedule", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 1_000));
        const change = await store.failRefresh(
          c,
          {
            status: "needs_reauth",
            reason: "invalid_refresh_token",
            lastError: "invalid_refresh_token",
            nextAttemptAtMs: 5_000,
            inDoubt: false,
          },
          1_100,
          event("T1", "needs_reauth", 1_100),
        );
        expect(change).toMatchObject({
          before: "active",
          after: "needs_reauth",
          reason: "invalid_refresh_token",
        });
        // The episode's own event is recorded with the change, in one transaction, naming the
        // credential it came from.
        expect((await store.listEvents("T1", { limit: 1 }))[0]).toMatchObject({
          type: "needs_reauth",
          kind: "bot",
          reason: "invalid_refresh_token",
        });
        expect((await store.getCredential(BOT))?.nextAttemptAtMs).toBeNull();
        expect(
          (
            await store.claimDue({ owner: "r", nowMs: 10_000_000, leaseMs: 1, limit: 10, provider: "slack" })
          ).map((d) => d.ref),
        ).toEqual([USER]);
        expect((await claim(BOT, "b", 2_000)).kind).toBe("not_refreshable");
      });

      it("rolls the connection up to its worst credential, with that credential's reason", async () => {
        await seedT1();
        const status = (
          s: "active" | "refresh_failing" | "needs_reauth",
          reason: "token_revoked" | "rate_limited" | null,
        ) => ({ status: s, reason, lastError: null });
        expect(
          await store.setCredentialStatus(
            "T1",
            ["user"],
            status("refresh_failing", "rate_limited"),
            2_000,
            [],
          ),
        ).toMatchObject({ before: "active", after: "refresh_failing" });
        expect(
          await store.setCredentialStatus("T1", ["bot"], status("needs_reauth", "token_revoked"), 2_100, [
            event("T1", "revoked", 2_100),
          ]),
        ).toMatchObject({ before: "refresh_failing", after: "needs_reauth" });
        expect(await store.getConnection("T1")).toMatchObject({
          status: "needs_reauth",
          reason: "token_revoked",
          updatedAtMs: 2_100,
        });
        expect(
          await store.setCredentialStatus("T1", ["bot"], status("active", null), 2_200, []),
        ).toMatchObject({
          before: "needs_reauth",
          after: "refresh_failing",
        });
        expect(await store.getConnection("T1")).toMatchObject({
          status: "refresh_failing",
          reason: "rate_limited",
        });
        expect(await store.setCredentialStatus("T1", "all", status("active", null), 2_300, [])).toMatchObject(
          {
            before: "refresh_failing",
            after: "active",
          },
        );
        expect((await store.getConnection("T1"))?.reason).toBeNull();
        expect(await store.setCredentialStatus("nope", "all", status("active", null), 2_300, [])).toBeNull();
        // Each episode's start and end is recorded beside the change that caused it.
        expect((await store.listEvents("T1", { limit: 10 })).map((e) => e.type)).toEqual([
          "recovered",
          "needs_reauth",
          "revoked",
          "imported",
        ]);
      });

      it("puts a revived credential back on the schedule", async () => {
        await seedT1();
        await store.setCredentialStatus(
          "T1",
          ["bot"],
          { status: "needs_reauth", reason: "token_revoked", lastError: null },
          2_000,
          [],
        );
        expect(
          (await store.claimDue({ owner: "r", nowMs: 9_000, leaseMs: 1, limit: 10, provider: "slack" })).map(
            (d) => d.ref,
          ),
        ).toEqual([]);
        await store.setCredentialStatus(
          "T1",
          ["bot"],
          { status: "active", reason: null, lastError: null },
          2_100,
          [],
        );
        expect(
          (await store.claimDue({ owner: "r", nowMs: 9_000, leaseMs: 1, limit: 10, provider: "slack" })).map(
            (d) => d.ref,
          ),
        ).toEqual([BOT]);
      });
    });

    describe("claimDue", () => {
      it("takes an on-demand claim that lapsed unfinished when its lease ends, not at the next scheduled run", async () => {
        await store.putConnection(
          connection("L", [credential("bot", "L", { refreshDueAtMs: 500_000 })]),
          1_000,
          [],
        );
        claimOf(await claim({ connectionId: "L", kind: "bot" }, "crashed", 2_000)); // forced: not due
        expect(await claimDue("r", 2_000 + LEASE - 1)).toEqual([]); // still held
        const retaken = await claimDue("r", 2_000 + LEASE);
        expect(retaken.map((d) => d.ref.connectionId)).toEqual(["L"]);
        expect(retaken[0]).toMatchObject({ previousAttemptLost: true });
        // Handed back unspent, it stays due (the lost attempt still wants a refresh to settle it), and
        // the journal still says so.
        await store.releaseClaim(retaken[0] as RefreshClaim);
        const again = await claimDue("r", 2_000 + LEASE + 1);
        expect(again.map((d) => d.ref.connectionId)).toEqual(["L"]);
        expect(again[0]).toMatchObject({ previousAttemptLost: true });
      });

      it("claims due rows only, oldest first, up to the limit, skipping live claims", async () => {
        for (const [id, due] of [
          ["A", 5_000],
          ["B", 3_000],
          ["C", 4_000],
          ["D", 9_000],
        ] as const) {
          await store.putConnection(
            connection(id, [credential("bot", id, { refreshDueAtMs: due })]),
            1_000,
            [],
          );
        }
        await store.putConnection(
          connection("E", [credential("bot", "E", { refresh: false, refreshDueAtMs: 1_000 })]),
          1_000,
          [],
        );
        await store.putConnection(
          connection("F", [credential("bot", "F", { refreshDueAtMs: null })]),
          1_000,
          [],
        );
        claimOf(await claim({ connectionId: "C", kind: "bot" }, "busy", 1_000));

        const first = await claimDue("r1", 6_000, 1);
        expect(first.map((d) => d.ref.connectionId)).toEqual(["B"]);
        expect(first[0]).toMatchObject({ owner: "r1", previousAttemptLost: false });
        expect(first[0]?.credential.refreshToken?.reveal()).toBe("xoxe-refresh-B-PLAINTEXT");
        expect(first[0]?.credential.accessToken.reveal()).toBe("xoxb-access-B-PLAINTEXT");
        const rest = await claimDue("r2", 6_000);
        expect(rest.map((d) => d.ref.connectionId)).toEqual(["A"]);
        expect(await claimDue("r3", 6_000)).toEqual([]);
        // Claims from claimDue are real claims: fenced, journaled, completable.
        expect((await claim({ connectionId: "A", kind: "bot" }, "x", 6_001)).kind).toBe("held_by_other");
        const a = rest[0] as RefreshClaim;
        expect(
          await store.completeRefresh(
            a,
            refreshed("A2", { due: 100_000 }),
            6_100,
            event("A", "refreshed", 6_100),
          ),
        ).toBe(true);
        expect((await store.getCredential({ connectionId: "A", kind: "bot" }))?.accessToken.reveal()).toBe(
          "xoxb-access-A2-PLAINTEXT",
        );
        await expect(
          store.claimDue({ owner: "r", nowMs: 1, leaseMs: 1, limit: 0, provider: "slack" }),
        ).rejects.toBeInstanceOf(TokenwardenError);
        // A caller that names no provider (it once meant "any") is told so, and nothing is claimed.
        for (const provider of [undefined, ""]) {
          await expect(
            store.claimDue({
              owner: "r",
              nowMs: 100_000,
              leaseMs: 1,
              limit: 10,
              provider,
            } as ClaimDueOptions),
          ).rejects.toMatchObject({ code: "invalid_input" });
        }
      });

      it("keeps a claim cleared by a status change off the schedule until its lease would have lapsed", async () => {
        await seedT1();
        const [taken] = await claimDue("a", 8_000);
        expect(taken?.ref).toEqual(BOT);
        // A health check says the credential is failing while a's request is still in flight: a is
        // fenced out, and its refresh token may already be spent, so nobody takes it again early.
        await store.setCredentialStatus(
          "T1",
          ["bot"],
          { status: "refresh_failing", reason: "provider_unavailable", lastError: "x" },
          8_500,
          [],
        );
        const early = await claimDue("b", 8_000 + LEASE - 1);
        expect(early.map((d) => d.ref)).not.toContainEqual(BOT);
        const later = await claimDue("b", 8_000 + LEASE);
        expect(later).toContainEqual(expect.objectContaining({ ref: BOT, previousAttemptLost: true }));
      });

      it("takes a renewed claim again only once the renewed lease lapsed", async () => {
        await seedT1();
        const [taken] = await claimDue("a", 8_000, 1);
        expect(await store.renewClaim(taken as RefreshClaim, 8_000 + LEASE - 1, LEASE)).toBe(true);
        const before = await claimDue("b", 8_000 + 2 * LEASE - 2);
        expect(before.map((d) => d.ref)).not.toContainEqual(BOT);
        const after = await claimDue("b", 8_000 + 2 * LEASE - 1);
        expect(after).toContainEqual(expect.objectContaining({ ref: BOT, owner: "b" }));
      });

      it("finds a lapsed claim due again, reporting the lost attempt", async () => {
        await seedT1();
        const crashed = await claimDue("crashed", 8_000);
        expect(crashed.map((d) => d.ref)).toEqual([BOT]);
        expect(await claimDue("r", 8_000 + LEASE - 1)).toEqual([
          expect.objectContaining({ ref: USER, previousAttemptLost: false }),
        ]);
        const recovered = await claimDue("r", 8_000 + LEASE);
        expect(recovered).toEqual([
          expect.objectContaining({ ref: BOT, owner: "r", previousAttemptLost: true }),
        ]);
        // The crashed holder's late write is fenced out.
        expect(
          await store.completeRefresh(
            crashed[0] as RefreshClaim,
            refreshed("zombie"),
            50_000,
            event("T1", "refreshed", 50_000),
          ),
        ).toBe(false);
      });
    });

    describe("claimDue by provider", () => {
      /** Due credentials of two providers, interleaved in due order: b1 1s, a1 2s, b2 3s, a2 4s, a3 5s. */
      async function seedTwoProviders(): Promise<void> {
        for (const [id, provider, due] of [
          ["b1", "b", 1_000],
          ["a1", "a", 2_000],
          ["b2", "b", 3_000],
          ["a2", "a", 4_000],
          ["a3", "a", 5_000],
        ] as const) {
          await store.putConnection(
            connection(id, [credential("bot", id, { refreshDueAtMs: due })], provider),
            1_000,
            [],
          );
        }
      }
      const ids = (claims: Array<{ ref: CredentialRef }>) => claims.map((c) => c.ref.connectionId);
      const bot = (connectionId: string): CredentialRef => ({ connectionId, kind: "bot" });

      it("claims only the given provider's due credentials, its limit counting only those", async () => {
        await seedTwoProviders();
        const first = await store.claimDue({
          owner: "r",
          nowMs: 6_000,
          leaseMs: LEASE,
          limit: 2,
          provider: "a",
        });
        expect(ids(first)).toEqual(["a1", "a2"]);
        expect(first.every((c) => c.credential.provider === "a")).toBe(true);
        const rest = await store.claimDue({
          owner: "r",
          nowMs: 6_000,
          leaseMs: LEASE,
          limit: 10,
          provider: "a",
        });
        expect(ids(rest)).toEqual(["a3"]);
        // Provider b's credentials were never touched: unclaimed, journal closed, still due.
        for (const id of ["b1", "b2"]) {
          expect(await store.getCredential(bot(id))).toMatchObject({
            claimUntilMs: null,
            refreshInDoubt: false,
          });
        }
        const b = await store.claimDue({
          owner: "r",
          nowMs: 6_000,
          leaseMs: LEASE,
          limit: 10,
          provider: "b",
        });
        expect(ids(b)).toEqual(["b1", "b2"]);
        expect(b[0]).toMatchObject({ previousAttemptLost: false });
      });

      it("counts a provider's due refreshes, claimed or not, up to a cap, and dates the most overdue", async () => {
        await seedTwoProviders();
        expect(await store.refreshBacklog("a", 6_000, 100)).toEqual({ due: 3, oldestDueAtMs: 2_000 });
        expect(await store.refreshBacklog("a", 4_000, 100)).toEqual({ due: 2, oldestDueAtMs: 2_000 });
        expect(await store.refreshBacklog("a", 6_000, 2)).toEqual({ due: 2, oldestDueAtMs: 2_000 });
        expect(await store.refreshBacklog("a", 1_999, 100)).toEqual({ due: 0, oldestDueAtMs: null });
        expect(await store.refreshBacklog("c", 6_000, 100)).toEqual({ due: 0, oldestDueAtMs: null });
        // A claim in flight is not a refresh done; a dead credential is no longer due.
        await store.claimDue({ owner: "r", nowMs: 6_000, leaseMs: LEASE, limit: 1, provider: "b" });
        await store.setCredentialStatus(
          "b2",
          "all",
          { status: "needs_reauth", reason: "token_revoked", lastError: "x" },
          6_000,
          [],
        );
        expect(await store.refreshBacklog("b", 6_000, 100)).toEqual({ due: 1, oldestDueAtMs: 1_000 });
      });

      it("ends the backoffs of a provider's outage, and only those", async () => {
        await seedTwoProviders();
        const fail = async (id: string, reason: "provider_unavailable" | "rate_limited", inDoubt = false) => {
          const r = await store.claimRefresh(bot(id), {
            owner: "o",
            nowMs: 6_000,
            leaseMs: LEASE,
            freshUntilMs: FORCE,
          });
          await store.failRefresh(
            claimOf(r),
            { status: "refresh_failing", reason, lastError: "x", nextAttemptAtMs: 600_000, inDoubt },
            6_000,
            event(id, "refresh_failed", 6_000),
          );
        };
        await fail("a1", "provider_unavailable");
        await fail("a2", "rate_limited"); // a 429's back-off is the provider's word: left
        await fail("b1", "provider_unavailable"); // another provider's: left
        // A timeout: that request may still reach the provider; retried at once, the retry could spend
        // the token first and the late request then supersede what it stored. It waits the delay.
        await fail("b2", "provider_unavailable", true);
        await fail("a3", "provider_unavailable");
        claimOf(await claim(bot("a3"), "busy", 7_000)); // in flight: its outcome replaces the backoff
        expect(await store.endOutageBackoffs?.("a", 8_000, 10_000)).toBe(1);
        expect(await store.getCredential(bot("a1"))).toMatchObject({
          status: "refresh_failing",
          nextAttemptAtMs: 8_000,
        });
        for (const id of ["a2", "b1"]) {
          expect(await store.getCredential(bot(id))).toMatchObject({ nextAttemptAtMs: 600_000 });
        }
        expect(await store.endOutageBackoffs?.("b", 8_000, 10_000)).toBe(2);
        expect(await store.getCredential(bot("b1"))).toMatchObject({ nextAttemptAtMs: 8_000 });
        expect(await store.getCredential(bot("b2"))).toMatchObject({ nextAttemptAtMs: 18_000 });
        // Already due within the delay: left as it is.
        expect(await store.endOutageBackoffs?.("b", 9_000, 10_000)).toBe(0);
        // Due again: the refresher takes it now.
        expect(
          ids(await store.claimDue({ owner: "r", nowMs: 8_000, leaseMs: LEASE, limit: 10, provider: "a" })),
        ).toEqual(["a1"]);
        expect(await store.endOutageBackoffs?.("a", 8_000, 10_000)).toBe(0);
      });

      it("claims none of a provider that has no due credentials", async () => {
        await seedTwoProviders();
        expect(
          await store.claimDue({ owner: "r", nowMs: 6_000, leaseMs: LEASE, limit: 10, provider: "c" }),
        ).toEqual([]);
      });
    });

    describe("claimDue with a credential it cannot open", () => {
      const T2: CredentialRef = { connectionId: "T2", kind: "bot" };
      const T3: CredentialRef = { connectionId: "T3", kind: "bot" };
      const HOUR = 3_600_000;
      const NOW = 40_000;

      /** A claimDue pass by `owner` at `nowMs` on `on`, reporting what it parks into `unreadable`. */
      const claimDueAt = (on: Store, nowMs: number, unreadable: UnreadableCredential[], owner = "r") =>
        on.claimDue({
          owner,
          nowMs,
          leaseMs: LEASE,
          limit: 10,
          onUnreadable: (u) => unreadable.push(u),
          provider: "slack",
        });

      /**
       * T1 (bot due 8s, user 18s) sealed with the store's key; T2 (due 5s) and T3 (due 6s, with a lapsed
       * claim, so its journal is open) sealed by a peer whose new key the store does not hold.
       */
      async function seedWithForeignKey(): Promise<Store> {
        await seedT1();
        const rotated = await peer(rotatedSealer());
        for (const [id, due] of [
          ["T2", 5_000],
          ["T3", 6_000],
        ] as const) {
          await rotated.putConnection(
            connection(id, [credential("bot", id, { refreshDueAtMs: due })]),
            1_000,
            [],
          );
        }
        claimOf(
          await rotated.claimRefresh(T3, {
            owner: "crashed",
            nowMs: 1_000,
            leaseMs: LEASE,
            freshUntilMs: FORCE,
          }),
        );
        return rotated;
      }

      it("claims the others, parks the unreadable ones for an hour, unclaimed, journal as it was", async () => {
        const rotated = await seedWithForeignKey();
        const unreadable: UnreadableCredential[] = [];
        const claims = await claimDueAt(store, NOW, unreadable);
        expect(claims.map((c) => c.ref)).toEqual([BOT, USER]);
        expect(claims[0]?.credential.refreshToken?.reveal()).toBe("xoxe-refresh-t1-bot-PLAINTEXT");
        expect(unreadable).toEqual([
          {
            ref: T2,
            provider: "slack",
            keyId: "new",
            retryAtMs: NOW + HOUR,
            error: expect.any(TokenwardenError),
          },
          {
            ref: T3,
            provider: "slack",
            keyId: "new",
            retryAtMs: NOW + HOUR,
            error: expect.any(TokenwardenError),
          },
        ]);
        expect(unreadable[0]?.error).toMatchObject({ code: "config_invalid" });
        expect(JSON.stringify(unreadable)).not.toMatch(/PLAINTEXT|v1\.new\./);
        // Not claimed, status unchanged, the journal as before the pass (T3's lost attempt still on record).
        expect(await rotated.getCredential(T2)).toMatchObject({
          status: "active",
          claimUntilMs: null,
          refreshInDoubt: false,
        });
        expect(await rotated.getCredential(T3)).toMatchObject({
          status: "active",
          claimUntilMs: null,
          refreshInDoubt: true,
        });
        expect((await rotated.listEvents("T2", { limit: 10 })).map((e) => e.type)).toEqual([]);
        // Parked: not due again at the same instant, nor until the hour is over, and not reported again.
        const again = await claimDueAt(store, NOW, unreadable);
        expect(again).toEqual([]);
        // (T1's claims lapse meanwhile and are due again; T2 and T3 are not.)
        const early = await rotated.claimDue({
          owner: "r",
          nowMs: NOW + HOUR - 1,
          leaseMs: LEASE,
          limit: 10,
          provider: "slack",
        });
        expect(early.map((c) => c.ref)).toEqual([BOT, USER]);
        expect(unreadable).toHaveLength(2);
      });

      it("claims a parked credential normally once the key is back", async () => {
        const rotated = await seedWithForeignKey();
        await claimDue("r", NOW);
        const unreadable: UnreadableCredential[] = [];
        const later = await claimDueAt(rotated, NOW + HOUR, unreadable, "r2");
        // T1's lapsed claims come first; T2 and T3 were parked at one instant, so in either order.
        const parked = later.filter((c) => c.ref.connectionId !== "T1");
        parked.sort((a, b) => a.ref.connectionId.localeCompare(b.ref.connectionId));
        expect(parked.map((c) => [c.ref, c.previousAttemptLost])).toEqual([
          [T2, false],
          [T3, true],
        ]);
        expect(parked[0]?.credential.refreshToken?.reveal()).toBe("xoxe-refresh-T2-PLAINTEXT");
        expect(unreadable).toEqual([]);
      });

      it("parks a credential whose sealed refresh token was altered in the database", async () => {
        await seedT1();
        await h.corruptRefreshToken(BOT);
        const unreadable: UnreadableCredential[] = [];
        const claims = await claimDueAt(store, NOW, unreadable);
        expect(claims.map((c) => c.ref)).toEqual([USER]);
        expect(unreadable).toMatchObject([{ ref: BOT, keyId: "old", retryAtMs: NOW + HOUR }]);
        // Parked, not left claimed: past the lease, within the hour, it is neither claimed nor reported.
        const pastLease = await claimDueAt(store, NOW + LEASE, unreadable);
        expect(pastLease.map((c) => c.ref)).toEqual([USER]);
        expect(unreadable).toHaveLength(1);
        // Still unreadable an hour later: parked again, never claimed (USER's claim lapsed: due again).
        const later = await claimDueAt(store, NOW + HOUR, unreadable);
        expect(later.map((c) => c.ref)).toEqual([USER]);
        expect(unreadable.map((u) => u.retryAtMs)).toEqual([NOW + HOUR, NOW + 2 * HOUR]);
      });

      it("keeps a credential parked through the end of an outage's backoffs", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "o", NOW));
        await store.failRefresh(
          c,
          {
            status: "refresh_failing",
            reason: "provider_unavailable",
            lastError: "http_503",
            nextAttemptAtMs: NOW + 1_000,
            inDoubt: false,
          },
          NOW,
          event("T1", "refresh_failed", NOW),
        );
        await h.corruptRefreshToken(BOT);
        const unreadable: UnreadableCredential[] = [];
        await claimDueAt(store, NOW + 1_000, unreadable); // backoff over: due, unreadable, parked
        expect(unreadable).toMatchObject([{ ref: BOT, retryAtMs: NOW + 1_000 + HOUR }]);
        // Its wait is the key's, not the outage's: it stays parked, not read again every minute.
        expect(await store.endOutageBackoffs?.("slack", NOW + 2_000, 10_000)).toBe(0);
        await claimDueAt(store, NOW + 2_000, unreadable);
        expect(unreadable).toHaveLength(1);
      });
    });

    describe("events", () => {
      it("lists newest first with beforeId paging; data and reason round-trip", async () => {
        await store.appendEvents([]);
        await store.appendEvents(
          Array.from({ length: 5 }, (_, i) => ({
            connectionId: "T1",
            kind: i % 2 === 0 ? ("bot" as const) : null,
            type: "checked" as const,
            atMs: 1_000 + i,
            reason: i === 4 ? ("invalid_auth" as const) : null,
            data: { i, nested: { ok: true } },
          })),
        );
        await store.appendEvents([event("T2", "imported", 1)]);
        const page1 = await store.listEvents("T1", { limit: 2 });
        expect(page1.map((e) => e.atMs)).toEqual([1_004, 1_003]);
        expect(page1[0]).toMatchObject({
          connectionId: "T1",
          kind: "bot",
          type: "checked",
          reason: "invalid_auth",
          data: { i: 4, nested: { ok: true } },
        });
        expect(page1[1]).toMatchObject({ kind: null, reason: null });
        const page2 = await store.listEvents("T1", { limit: 2, beforeId: page1[1]?.id ?? 0 });
        expect(page2.map((e) => e.atMs)).toEqual([1_002, 1_001]);
        const page3 = await store.listEvents("T1", { limit: 2, beforeId: page2[1]?.id ?? 0 });
        expect(page3.map((e) => e.atMs)).toEqual([1_000]);
        expect(typeof page3[0]?.id).toBe("number");
      });

      it("prunes events recorded before the cut-off, oldest first, in bounded batches", async () => {
        await store.appendEvents([1_000, 2_000, 3_000, 4_000, 5_000].map((at) => event("T1", "checked", at)));
        await store.appendEvents([event("T2", "imported", 1_500)]);
        const left = async () => [
          ...(await store.listEvents("T1", { limit: 10 })).map((e) => e.atMs),
          ...(await store.listEvents("T2", { limit: 10 })).map((e) => e.atMs),
        ];
        expect(await store.pruneEvents(1_000, 100)).toBe(0); // strictly before the cut-off
        expect(await store.pruneEvents(3_500, 2)).toBe(2); // a batch of the two oldest
        expect(await left()).toEqual([5_000, 4_000, 3_000, 1_500]);
        expect(await store.pruneEvents(3_500, 100)).toBe(2);
        expect(await left()).toEqual([5_000, 4_000]);
        expect(await store.pruneEvents(3_500, 100)).toBe(0);
        await expect(store.pruneEvents(3_500, 0)).rejects.toMatchObject({ code: "invalid_input" });
      });
    });

    describe("edge cases", () => {
      beforeEach(async () => {
        await store.putConnection(connection("T1", [credential("bot", "t1-bot")]), 1_000, [
          event("T1", "imported", 1_000),
        ]);
      });

      const claim = (owner: string, nowMs: number) =>
        store.claimRefresh(BOT, { owner, nowMs, leaseMs: LEASE, freshUntilMs: FORCE });

      // Catches a regression (general path): completionPatch() drops the old refresh token when the reply has none.
      it("keeps the previous refresh token when a credential recovering from refresh_failing gets a reply without one", async () => {
        const first = claimOf(await claim("a", 1_000));
        await store.failRefresh(
          first,
          {
            status: "refresh_failing",
            reason: "provider_unavailable",
            lastError: "http_503",
            nextAttemptAtMs: 2_000,
            inDoubt: false,
          },
          1_100,
          { ...event("T1", "refresh_failed", 1_100), reason: "provider_unavailable" },
        );
        const second = claimOf(await claim("a", 2_000));
        const stored = await store.completeRefresh(
          second,
          {
            tokens: tokens("r1", { refresh: false, expiresAtMs: 50_000 }),
            providerData: {},
            refreshDueAtMs: 45_000,
          },
          2_100,
          event("T1", "refreshed", 2_100),
        );
        expect(stored).toBe(true);
        const bot = await store.getCredential(BOT);
        expect(bot?.status).toBe("active");
        expect(bot?.accessToken.reveal()).toBe("xoxb-access-r1-PLAINTEXT");
        expect(bot?.refreshToken?.reveal()).toBe("xoxe-refresh-t1-bot-PLAINTEXT");
      });

      // Catches a regression: resealBatch selects rows by the access token's key only, so a row whose access token is
      // already under the new key but whose refresh token is not (a refresh completed under the new ring
      // with a reply that carried no refresh token) is never re-sealed; retiring the old key then loses it.
      it("re-seals a refresh token left under the old key when the access token is already under the new one", async () => {
        const rotated = await peer(rotatedSealer());
        expect(await refreshKeepingRefreshToken(rotated, BOT, "r1")).toBe(true);
        expect(await rotated.resealBatch(10)).toEqual({ resealed: 1, unreadable: [], next: null });
        expect((await rotated.resealBatch(10)).resealed).toBe(0);
        const newOnly = await peer(newKeyOnlySealer());
        const bot = await newOnly.getCredential(BOT);
        expect(bot?.accessToken.reveal()).toBe("xoxb-access-r1-PLAINTEXT");
        expect(bot?.refreshToken?.reveal()).toBe("xoxe-refresh-t1-bot-PLAINTEXT");
      });

      // Catches a regression: nextCursor set on a last page that is exactly full (an extra, empty page).
      it("gives no cursor after a last page that is exactly full", async () => {
        for (const id of ["T2", "T3", "T4"]) {
          await store.putConnection(connection(id, [credential("bot", id)]), 1_000, []);
        }
        const first = await store.listConnections({ limit: 2 });
        expect(first.items.map((c) => c.id)).toEqual(["T1", "T2"]);
        expect(first.nextCursor).not.toBeNull();
        const second = await store.listConnections({ limit: 2, cursor: first.nextCursor ?? "" });
        expect(second.items.map((c) => c.id)).toEqual(["T3", "T4"]);
        expect(second.nextCursor).toBeNull();
      });

      // Catches a regression: rollUpStatus lets a later credential win a tie, so the connection's reason flips to the
      // user credential's although the bot credential (first in kind order) died first.
      it("keeps the first credential's reason (bot before user) when both are needs_reauth", async () => {
        await store.putConnection(
          connection("T9", [credential("bot", "t9-bot"), credential("user", "t9-user")]),
          1_000,
          [],
        );
        const dead = (reason: "token_revoked" | "invalid_auth") => ({
          status: "needs_reauth" as const,
          reason,
          lastError: reason,
        });
        await store.setCredentialStatus("T9", ["bot"], dead("token_revoked"), 2_000, []);
        await store.setCredentialStatus("T9", ["user"], dead("invalid_auth"), 3_000, []);
        const c = await store.getConnection("T9");
        expect(c?.status).toBe("needs_reauth");
        expect(c?.reason).toBe("token_revoked");
      });
    });

    describe("provider state", () => {
      it("upserts and says whether the status changed", async () => {
        expect(await store.getProviderState("slack")).toBeNull();
        expect(
          await store.setProviderState({
            provider: "slack",
            status: "ok",
            reason: null,
            lastError: null,
            sinceMs: 1,
          }),
        ).toBe(false);
        expect(
          await store.setProviderState({
            provider: "slack",
            status: "misconfigured",
            reason: "provider_misconfigured",
            lastError: "bad_client_secret",
            sinceMs: 2,
          }),
        ).toBe(true);
        expect(
          await store.setProviderState({
            provider: "slack",
            status: "misconfigured",
            reason: "provider_misconfigured",
            lastError: "invalid_client_id",
            sinceMs: 3,
          }),
        ).toBe(false);
        expect(await store.getProviderState("slack")).toEqual({
          provider: "slack",
          status: "misconfigured",
          reason: "provider_misconfigured",
          lastError: "invalid_client_id",
          sinceMs: 2,
          clientFingerprint: null,
          assertedAtMs: null,
        });
        expect(
          await store.setProviderState({
            provider: "slack",
            status: "ok",
            reason: null,
            lastError: null,
            sinceMs: 4,
          }),
        ).toBe(true);
        expect((await store.getProviderState("slack"))?.sinceMs).toBe(4);
      });

      it("lifts a stale flag only when it names other client credentials, last reported before the bound", async () => {
        const flag = (clientFingerprint: string | null, assertedAtMs: number | null) =>
          store.setProviderState(refusedClient(1_000, { clientFingerprint, assertedAtMs }));
        const stale = (provider: string, clientFingerprint: string, staleBeforeMs: number) =>
          store.liftProviderFlag(provider, { clientFingerprint, nowMs: 9_000, staleBeforeMs });
        await flag("old-secret", 5_000);
        expect(await store.getProviderState("slack")).toMatchObject({
          status: "misconfigured",
          clientFingerprint: "old-secret",
          assertedAtMs: 5_000,
        });
        // Reported at the bound or after: a process still sends those credentials.
        expect(await stale("slack", "new-secret", 5_000)).toBe(false);
        // The flag names the credentials asking: theirs is no stale flag of someone else's.
        expect(await stale("slack", "old-secret", 6_000)).toBe(false);
        expect(await stale("gitlab", "new-secret", 6_000)).toBe(false);
        // A process still refused reports again: the flag is fresh once more (not again within the bound).
        const reassert = (fingerprint: string, nowMs: number, ownBeforeMs: number, othersBeforeMs = 0) =>
          store.reassertProviderFlag("slack", fingerprint, nowMs, { ownBeforeMs, othersBeforeMs });
        expect(await reassert("old-secret", 7_000, 5_000)).toBe(false);
        expect(await reassert("old-secret", 7_000, 6_000)).toBe(true);
        expect(await reassert("old-secret", 7_500, 6_000)).toBe(false);
        expect(await stale("slack", "new-secret", 6_000)).toBe(false);
        expect((await store.getProviderState("slack"))?.status).toBe("misconfigured");
        expect(await stale("slack", "new-secret", 7_001)).toBe(true);
        expect(await store.getProviderState("slack")).toEqual({
          provider: "slack",
          status: "ok",
          reason: null,
          lastError: null,
          sinceMs: 9_000,
          clientFingerprint: "new-secret",
          assertedAtMs: null,
        });
        expect(await stale("slack", "newer-secret", 10_000)).toBe(false);
        expect(await reassert("new-secret", 10_000, 10_000, 10_000)).toBe(false); // ok
        // Another refused process's report takes a flag that names other refused credentials only once
        // their process has stopped reporting it (its last report before othersBeforeMs).
        await flag("typo-secret", 9_500);
        expect(await reassert("old-secret", 10_000, 9_600, 9_500)).toBe(false);
        expect((await store.getProviderState("slack"))?.clientFingerprint).toBe("typo-secret");
        expect(await reassert("old-secret", 10_000, 0, 9_501)).toBe(true);
        expect(await store.getProviderState("slack")).toMatchObject({
          status: "misconfigured",
          clientFingerprint: "old-secret",
          assertedAtMs: 10_000,
        });
        // A flag that names no credentials (recorded before flags named them) is never stale, nor taken.
        await flag(null, null);
        expect(await reassert("old-secret", 10_000, 10_000, 10_000)).toBe(false);
        expect(await stale("slack", "new-secret", 10_000)).toBe(false);
        expect((await store.getProviderState("slack"))?.status).toBe("misconfigured");
      });

      it("lifts, after a success, a flag that names the credentials that worked or none, never another's", async () => {
        const works = (clientFingerprint: string | null) =>
          store.liftProviderFlag("slack", { clientFingerprint, nowMs: 9_000 });
        await store.setProviderState(refusedClient(1_000, { clientFingerprint: "old", assertedAtMs: 1_000 }));
        expect(await works("new")).toBe(false);
        expect((await store.getProviderState("slack"))?.status).toBe("misconfigured");
        expect(await works("old")).toBe(true);
        expect(await store.getProviderState("slack")).toMatchObject({ status: "ok", sinceMs: 9_000 });
        expect(await works("old")).toBe(false); // nothing to lift
        await store.setProviderState(refusedClient(1_000));
        expect(await works("new")).toBe(true);
        await store.setProviderState(refusedClient(1_000, { clientFingerprint: "old", assertedAtMs: 1_000 }));
        expect(await works(null)).toBe(true); // a provider that cannot name its credentials
      });

      it("reports one change for concurrent first flags, whatever the store's locking", async () => {
        const changed = await Promise.all(
          Array.from({ length: 8 }, () =>
            store.setProviderState(refusedClient(1_000, { clientFingerprint: "old", assertedAtMs: 1_000 })),
          ),
        );
        expect(changed.filter(Boolean)).toHaveLength(1);
      });
    });

    describe("provider pauses (a 429 shared by every instance)", () => {
      it("records a pause, keeps a later end over an earlier one, and reads null for a provider never paused", async () => {
        expect(await store.getProviderPause("slack")).toBeNull();
        await store.pauseProvider({ provider: "slack", untilMs: 5_000, error: "ratelimited" });
        // A shorter Retry-After heard meanwhile must not cut a live pause short.
        await store.pauseProvider(
          { provider: "slack", untilMs: 3_000, error: "older" },
          { replaceEndingAfterMs: 6_000 },
        );
        expect(await store.getProviderPause("slack")).toEqual({
          provider: "slack",
          untilMs: 5_000,
          error: "ratelimited",
        });
        // An end later than any pause recorded now could have (a clock that ran ahead) is replaced.
        await store.pauseProvider(
          { provider: "slack", untilMs: 3_000, error: "newer" },
          { replaceEndingAfterMs: 4_000 },
        );
        expect(await store.getProviderPause("slack")).toEqual({
          provider: "slack",
          untilMs: 3_000,
          error: "newer",
        });
        await store.pauseProvider({ provider: "slack", untilMs: 9_000, error: "again" });
        expect(await store.getProviderPause("slack")).toEqual({
          provider: "slack",
          untilMs: 9_000,
          error: "again",
        });
        expect(await store.getProviderPause("other")).toBeNull();
      });

      it("refuses a pause either store could not keep, and changes nothing", async () => {
        await store.pauseProvider({ provider: "slack", untilMs: 5_000, error: "ratelimited" });
        const bad = [
          { provider: "slack", untilMs: 6_000.5, error: "ratelimited" },
          { provider: "slack", untilMs: Number.NaN, error: "ratelimited" },
          { provider: "", untilMs: 6_000, error: "ratelimited" },
          { provider: "slack", untilMs: 6_000, error: "rate\u0000limited" },
          { provider: "sl\u0000ack", untilMs: 6_000, error: "ratelimited" },
        ];
        for (const pause of bad) {
          await expect(store.pauseProvider(pause), JSON.stringify(pause)).rejects.toMatchObject({
            code: "invalid_input",
          });
        }
        expect(await store.getProviderPause("slack")).toEqual({
          provider: "slack",
          untilMs: 5_000,
          error: "ratelimited",
        });
      });
    });

    describe("provider pauses: an instant that is no number (review8)", () => {
      it("refuses a null untilMs with invalid_input, as any instant that is not a whole number of ms", async () => {
        // checkInstant lets null through (completions may carry a null instant), so the row reaches the
        // database and its NOT NULL refuses it as store_unavailable: an outage to whoever alerts on it.
        await store.pauseProvider({ provider: "slack", untilMs: 5_000, error: "ratelimited" });
        const bad = { provider: "slack", untilMs: null, error: "ratelimited" } as unknown as ProviderPause;
        await expect(store.pauseProvider(bad)).rejects.toMatchObject({ code: "invalid_input" });
        expect(await store.getProviderPause("slack")).toEqual({
          provider: "slack",
          untilMs: 5_000,
          error: "ratelimited",
        });
      });
    });

    describe("outbox, single-use marks, settings (the server's state)", () => {
      const webhooksOf = async (s: Store, nowMs = 10_000_000) =>
        s.claimOutbox({ owner: "probe", nowMs, leaseMs: 1, limit: 100 });

      /** T1 dies through an outbox-writing peer; its one webhook is leased to "a" at 2_000. */
      const oneLeasedWebhook = async () => {
        const ob = await peer(testSealer(), { outbox: true });
        await seedT1();
        await ob.setCredentialStatus(
          "T1",
          "all",
          { status: "needs_reauth", reason: "token_revoked", lastError: "x" },
          2_000,
          [],
        );
        const [m] = await ob.claimOutbox({ owner: "a", nowMs: 2_000, leaseMs: 1_000, limit: 10 });
        if (m === undefined) throw new Error("expected a webhook");
        return { ob, m };
      };

      it("writes no webhook unless opened with outbox: true", async () => {
        await seedT1();
        await store.setCredentialStatus(
          "T1",
          "all",
          { status: "needs_reauth", reason: "app_uninstalled", lastError: "app_uninstalled" },
          2_000,
          [],
        );
        expect(await webhooksOf(store)).toEqual([]);
      });

      it("writes each webhook in the transaction of its change: needs_reauth, recovered, refresh_failed, provider.misconfigured", async () => {
        const ob = await peer(testSealer(), { outbox: true });
        await seedT1();
        const c = claimOf(
          await ob.claimRefresh(BOT, { owner: "a", nowMs: 1_000, leaseMs: LEASE, freshUntilMs: FORCE }),
        );
        await ob.failRefresh(
          c,
          {
            status: "refresh_failing",
            reason: "rate_limited",
            lastError: "ratelimited",
            nextAttemptAtMs: 61_000,
            inDoubt: false,
          },
          1_100,
          {
            ...event("T1", "refresh_failed", 1_100),
            reason: "rate_limited",
            data: { error: "ratelimited", nextAttemptAtMs: 61_000, attempt: 1 },
          },
        );
        await ob.setCredentialStatus(
          "T1",
          "all",
          { status: "needs_reauth", reason: "app_uninstalled", lastError: "app_uninstalled" },
          2_000,
          [],
        );
        // Already dead: no second episode, no second webhook.
        await ob.setCredentialStatus(
          "T1",
          ["bot"],
          { status: "needs_reauth", reason: "token_revoked", lastError: "token_revoked" },
          2_100,
          [],
        );
        await ob.putConnection(connection("T1", [credential("bot", "t1-bot-2")]), 3_000, []);
        await ob.setProviderState({
          provider: "slack",
          status: "misconfigured",
          reason: "provider_misconfigured",
          lastError: "bad_client_secret",
          sinceMs: 4_000,
        });
        await ob.setProviderState({
          provider: "slack",
          status: "misconfigured",
          reason: "provider_misconfigured",
          lastError: "bad_client_secret",
          sinceMs: 4_100,
        });
        const sent = await webhooksOf(store);
        expect(sent.map((m) => m.type)).toEqual([
          "connection.refresh_failed",
          "connection.needs_reauth",
          "connection.recovered",
          "provider.misconfigured",
        ]);
        expect(sent[0]?.payload).toEqual({
          connection_id: "T1",
          provider: "slack",
          kind: "bot",
          reason: "rate_limited",
          error: "ratelimited",
          retry_at: new Date(61_000).toISOString(),
          attempt: 1,
          at: new Date(1_100).toISOString(),
        });
        expect(sent[1]?.payload).toMatchObject({
          connection_id: "T1",
          kind: null,
          reason: "app_uninstalled",
        });
        expect(sent[3]?.payload).toMatchObject({ provider: "slack", error: "bad_client_secret" });
        expect(new Set(sent.map((m) => m.id)).size).toBe(4);
        expect(sent.every((m) => m.attempts === 0)).toBe(true);
      });

      it("writes provider.recovered in the transaction that lifts the flag: once per episode, in whichever process lifts it", async () => {
        const at = (ms: number) => new Date(ms).toISOString();
        const writers = [
          await peer(testSealer(), { outbox: true }),
          await peer(testSealer(), { outbox: true }),
        ];
        const [ob] = writers;
        if (ob === undefined) throw new Error("expected an outbox peer");
        const lift = (s: Store, clientFingerprint: string | null, nowMs: number, staleBeforeMs?: number) =>
          s.liftProviderFlag("slack", {
            clientFingerprint,
            nowMs,
            ...(staleBeforeMs === undefined ? {} : { staleBeforeMs }),
          });
        // Episode 1: the old secret refused at 4_000. A success of other credentials lifts nothing.
        await ob.setProviderState(refusedClient(4_000, { clientFingerprint: "old", assertedAtMs: 4_000 }));
        expect(await lift(ob, "new", 5_000)).toBe(false);
        // The old secret works again in every process at once (a fixed secret at Slack): one lifts it.
        const lifted = await Promise.all(
          [...writers, ...writers].map((s, i) => lift(s, i % 2 === 0 ? "old" : null, 6_000)),
        );
        expect(lifted.filter(Boolean)).toHaveLength(1);
        expect(await lift(ob, "old", 6_500)).toBe(false); // nothing left to lift
        // A store that writes no webhooks lifts without one.
        await ob.setProviderState(refusedClient(6_800, { clientFingerprint: "old", assertedAtMs: 6_800 }));
        expect(await lift(store, "old", 6_900)).toBe(true);
        // Episode 3: raised again; lifted as a stale flag of other credentials nobody reports any more.
        await ob.setProviderState(refusedClient(7_000, { clientFingerprint: "old", assertedAtMs: 7_000 }));
        expect(await lift(ob, "new", 8_000, 7_500)).toBe(true);
        // Episode 4: raised, then set back to ok by an upsert (a store's own caller).
        await ob.setProviderState(refusedClient(9_000));
        await ob.setProviderState({
          provider: "slack",
          status: "ok",
          reason: null,
          lastError: null,
          sinceMs: 9_500,
        });

        const sent = await webhooksOf(store);
        const recovered = sent
          .filter((m) => m.type === "provider.recovered")
          .sort((a, b) => a.createdAtMs - b.createdAtMs);
        expect(recovered.map((m) => m.payload)).toEqual([
          { provider: "slack", since: at(4_000), at: at(6_000) },
          { provider: "slack", since: at(7_000), at: at(8_000) },
          { provider: "slack", since: at(9_000), at: at(9_500) },
        ]);
        expect(recovered.map((m) => m.createdAtMs)).toEqual([6_000, 8_000, 9_500]);
        expect(sent.filter((m) => m.type === "provider.misconfigured")).toHaveLength(4);
      });

      it("leases webhooks to one owner at a time; completes and retries are fenced on the lease", async () => {
        const { ob, m } = await oneLeasedWebhook();
        expect(await store.claimOutbox({ owner: "b", nowMs: 2_999, leaseMs: 1_000, limit: 10 })).toEqual([]);
        // a's lease lapsed (it died): b takes over; a's late answer changes nothing.
        const again = await store.claimOutbox({ owner: "b", nowMs: 3_000, leaseMs: 1_000, limit: 10 });
        expect(again.map((x) => x.id)).toEqual([m.id]);
        expect(await ob.completeOutbox(m.id, "a", 3_001)).toBe(false);
        expect(await store.retryOutbox(m.id, "b", 10_000, "http_503")).toBe(true);
        expect(await store.claimOutbox({ owner: "c", nowMs: 9_999, leaseMs: 1_000, limit: 10 })).toEqual([]);
        const third = await store.claimOutbox({ owner: "c", nowMs: 10_000, leaseMs: 1_000, limit: 10 });
        expect(third).toMatchObject([{ id: m.id, attempts: 1 }]);
        expect(await store.completeOutbox(m.id, "c", 10_001)).toBe(true);
        expect(await store.completeOutbox(m.id, "c", 10_002)).toBe(false);
        expect(await webhooksOf(store, Number.MAX_SAFE_INTEGER)).toEqual([]);
      });

      it("prunes delivered webhooks older than the cut-off, never undelivered ones", async () => {
        const ob = await peer(testSealer(), { outbox: true });
        for (let i = 0; i < 3; i++) {
          await ob.putConnection(connection(`P${i}`, [credential("bot", `p${i}`)]), 1_000, []);
          await ob.setCredentialStatus(
            `P${i}`,
            "all",
            { status: "needs_reauth", reason: "token_revoked", lastError: "x" },
            2_000,
            [],
          );
        }
        const claimed = await ob.claimOutbox({ owner: "a", nowMs: 2_000, leaseMs: 1_000, limit: 2 });
        expect(claimed).toHaveLength(2);
        expect(await ob.completeOutbox(claimed[0]?.id ?? "", "a", 2_100)).toBe(true);
        expect(await ob.completeOutbox(claimed[1]?.id ?? "", "a", 5_000)).toBe(true);
        expect(await store.pruneOutbox(2_100, 100)).toBe(0); // strictly before the cut-off
        expect(await store.pruneOutbox(4_000, 100)).toBe(1);
        expect(await store.pruneOutbox(Number.MAX_SAFE_INTEGER, 100)).toBe(1);
        // The undelivered one is still there, due.
        expect(await webhooksOf(store, Number.MAX_SAFE_INTEGER)).toHaveLength(1);
      });

      it("abandons a webhook (a dead letter): fenced on the lease, never claimed again, pruned after the cut-off", async () => {
        const { m } = await oneLeasedWebhook();
        expect(await store.abandonOutbox(m.id, "someone-else", 2_500, "http_410")).toBe(false);
        expect(await store.abandonOutbox(m.id, "a", 2_500, "http_410")).toBe(true);
        expect(await store.abandonOutbox(m.id, "a", 2_600, "http_410")).toBe(false); // no lease any more
        expect(await store.completeOutbox(m.id, "a", 2_700)).toBe(false);
        expect(await webhooksOf(store, Number.MAX_SAFE_INTEGER)).toEqual([]);
        expect(await store.pruneOutbox(2_500, 100)).toBe(0); // strictly before the cut-off
        expect(await store.pruneOutbox(2_501, 100)).toBe(1);
        expect(await store.pruneOutbox(Number.MAX_SAFE_INTEGER, 100)).toBe(0);
      });

      it("hands each due webhook to one of several concurrent claimers", async () => {
        const ob = await peer(testSealer(), { outbox: true });
        for (let i = 0; i < 12; i++) {
          await ob.putConnection(connection(`C${i}`, [credential("bot", `c${i}`)]), 1_000, []);
          await ob.setCredentialStatus(
            `C${i}`,
            "all",
            { status: "needs_reauth", reason: "token_revoked", lastError: "x" },
            2_000,
            [],
          );
        }
        const others = [store, await peer(), await peer()];
        const batches = await Promise.all(
          others.map((s, i) => s.claimOutbox({ owner: `o${i}`, nowMs: 2_000, leaseMs: 60_000, limit: 5 })),
        );
        const ids = batches.flat().map((m) => m.id);
        expect(ids.length).toBe(12);
        expect(new Set(ids).size).toBe(12);
      });

      it("marks a key once across processes until it expires; unmark frees it", async () => {
        const other = await peer();
        expect(await store.markOnce("oauth_state", "s1", 1_000, 5_000)).toBe(true);
        expect(await other.markOnce("oauth_state", "s1", 1_001, 5_000)).toBe(false);
        expect(await other.markOnce("slack_event", "s1", 1_001, 5_000)).toBe(true);
        expect(await other.markOnce("oauth_state", "s1", 5_000, 9_000)).toBe(true);
        await store.unmarkOnce("oauth_state", "s1");
        expect(await store.markOnce("oauth_state", "s1", 5_001, 9_000)).toBe(true);
        const races = await Promise.all([store, other, await peer()].map((s) => s.markOnce("x", "k", 1, 2)));
        expect(races.filter(Boolean)).toHaveLength(1);
        await expect(store.markOnce("", "k", 1, 2)).rejects.toMatchObject({ code: "invalid_input" });
      });

      it("tells whether an unexpired mark exists, in any process, setting none", async () => {
        const other = await peer();
        expect(await store.hasMark?.("connect_session", "s1", 1_000)).toBe(false);
        expect(await store.markOnce("connect_session", "s1", 1_000, 5_000)).toBe(true);
        expect(await other.hasMark?.("connect_session", "s1", 4_999)).toBe(true);
        expect(await other.hasMark?.("oauth_state", "s1", 4_999)).toBe(false);
        expect(await other.hasMark?.("connect_session", "s2", 4_999)).toBe(false);
        expect(await other.hasMark?.("connect_session", "s1", 5_000)).toBe(false); // expired
        expect(await other.markOnce("connect_session", "s2", 1_000, 5_000)).toBe(true); // s2 was not set by asking
        await store.unmarkOnce("connect_session", "s1");
        expect(await other.hasMark?.("connect_session", "s1", 1_001)).toBe(false);
        await expect(store.hasMark?.("", "k", 1)).rejects.toMatchObject({ code: "invalid_input" });
      });

      it("extends or removes only the mark a caller set (fenced on the expiry it set)", async () => {
        expect(await store.markOnce("slack_event", "E1", 1_000, 61_000)).toBe(true);
        expect(await store.extendMark("slack_event", "E1", 60_000, 99_000)).toBe(false); // not that mark
        expect(await store.extendMark("slack_event", "E1", 61_000, 86_401_000)).toBe(true);
        expect(await store.markOnce("slack_event", "E1", 70_000, 130_000)).toBe(false); // held a day now
        await store.unmarkOnce("slack_event", "E1", 61_000); // a stale remover: nothing happens
        expect(await store.markOnce("slack_event", "E1", 71_000, 131_000)).toBe(false);
        // Expired, then set again by another caller: the first caller's fenced unmark leaves it.
        expect(await store.markOnce("slack_event", "E1", 86_401_000, 86_461_000)).toBe(true);
        await store.unmarkOnce("slack_event", "E1", 61_000);
        expect(await store.markOnce("slack_event", "E1", 86_402_000, 86_462_000)).toBe(false);
        await store.unmarkOnce("slack_event", "E1", 86_461_000);
        expect(await store.markOnce("slack_event", "E1", 86_403_000, 86_463_000)).toBe(true);
      });

      it("keeps the first of concurrent settings; putSetting replaces", async () => {
        const others = [store, await peer(), await peer()];
        const results = await Promise.all(others.map((s, i) => s.putSettingIfAbsent("api_key", `v${i}`)));
        expect(results.filter((r) => r.inserted)).toHaveLength(1);
        expect(new Set(results.map((r) => r.value)).size).toBe(1);
        await store.putSetting("api_key", "replaced");
        expect(await store.putSettingIfAbsent("api_key", "z")).toEqual({
          value: "replaced",
          inserted: false,
        });
      });

      it("counts connections by status in one query", async () => {
        expect(await store.countConnectionsByStatus()).toEqual({
          active: 0,
          refresh_failing: 0,
          needs_reauth: 0,
        });
        await seedT1();
        await store.putConnection(connection("T2", [credential("bot", "t2")]), 1_000, []);
        await store.setCredentialStatus(
          "T2",
          "all",
          { status: "needs_reauth", reason: "token_revoked", lastError: "x" },
          2_000,
          [],
        );
        expect(await store.countConnectionsByStatus()).toEqual({
          active: 1,
          refresh_failing: 0,
          needs_reauth: 1,
        });
      });
    });

    describe("secrets at rest (invariant 5)", () => {
      it("never stores a token in plaintext", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 1_000));
        await store.completeRefresh(c, refreshed("rotated"), 1_100, event("T1", "refreshed", 1_100));
        const text = await h.textAtRest();
        expect(text).toContain("v1.old."); // the sealed values are there…
        expect(text).toContain("team T1");
        for (const label of ["t1-bot", "t1-user", "rotated"]) {
          expect(text).not.toContain(`access-${label}-PLAINTEXT`); // …and no token
          expect(text).not.toContain(`refresh-${label}-PLAINTEXT`);
        }
      });

      it("fails loudly without the key, naming no secret", async () => {
        await seedT1();
        // Another store with the same key reads fine; a store without the key fails loudly, naming no secret.
        expect((await (await peer()).getCredential(BOT))?.accessToken).toBeInstanceOf(Secret);
        const error = await (await peer(newKeyOnlySealer())).getCredential(BOT).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "config_invalid" });
        expect(String((error as Error).message)).not.toContain("PLAINTEXT");
      });

      it("checkKeyRing refuses a ring that opens none of the stored secrets, naming a key id only", async () => {
        await store.checkKeyRing(); // empty: nothing to check against
        await seedT1();
        await store.checkKeyRing();
        await (await peer(rotatedSealer())).checkKeyRing(); // holds the old key too
        const error = await (await peer(newKeyOnlySealer())).checkKeyRing().catch((e: unknown) => e);
        expect(error).toMatchObject({ code: "config_invalid" });
        expect(String((error as Error).message)).toContain('key id "old"');
        expect(String((error as Error).message)).not.toMatch(/PLAINTEXT|Zm9y/);
        // Some rows under a key the ring still has: a key dropped too early for the rest, not a wrong
        // key; those rows are parked one by one (README), startup goes on.
        await (await peer(newKeyOnlySealer())).putConnection(
          connection("T9", [credential("bot", "t9")]),
          2_000,
          [],
        );
        await (await peer(newKeyOnlySealer())).checkKeyRing();
        await store.checkKeyRing();
      });

      it("refuses a ring key whose id the store knows under other key material", async () => {
        await seedT1();
        const otherOld = () => createSealer(`old:${Buffer.alloc(32, 3).toString("base64")}`);
        // Values under "old" are there to try: none opens with this "old".
        await expect((await peer(otherOld())).checkKeyRing()).rejects.toMatchObject({
          code: "config_invalid",
        });
        await store.checkKeyRing(); // the right key passes, and leaves its key check
        await store.deleteConnection("T1");
        // No value under "old" is left; the key check still says which key "old" is.
        await expect((await peer(otherOld())).checkKeyRing()).rejects.toThrow(/the key with id "old"/);
        await store.checkKeyRing();
      });

      it("checks an old key id against the refresh tokens left under it, not only access tokens", async () => {
        await store.putConnection(connection("T1", [credential("bot", "t1-bot")]), 1_000, []);
        // A refresh under the new ring whose reply carried no refresh token: only that is left under "old".
        const rotated = await peer(rotatedSealer());
        expect(await refreshKeepingRefreshToken(rotated, BOT, "r1")).toBe(true);
        const wrongOld = createSealer(`${NEW_KEY},old:${Buffer.alloc(32, 5).toString("base64")}`);
        await expect((await peer(wrongOld)).checkKeyRing()).rejects.toThrow(/the key with id "old"/);
        await rotated.checkKeyRing(); // the right ring passes
      });

      it("re-seals every secret with the new key in batches, keeping versions", async () => {
        await seedT1();
        const v1 = (await store.getCredential(BOT))?.version ?? -1;
        await store.putConnection(connection("T2", [credential("bot", "t2", { refresh: false })]), 1_000, []);
        const rotated = await peer(rotatedSealer());
        // In key order: T1's bot and user, then T2's bot; `next` says where the following batch starts.
        expect(await rotated.resealBatch(2)).toEqual({ resealed: 2, unreadable: [], next: USER });
        expect(await rotated.resealBatch(2, USER)).toEqual({ resealed: 1, unreadable: [], next: null });
        expect(await rotated.resealBatch(2)).toEqual({ resealed: 0, unreadable: [], next: null });
        // Nothing sealed with the old key is left at rest (on SQLite: not in freed space or the WAL
        // either), so the old key can be retired, or thrown away after a leak, at once.
        expect(await h.textAtRest()).not.toContain(sealedPrefix("old"));
        const newOnly = await peer(newKeyOnlySealer());
        expect((await newOnly.getCredential(BOT))?.refreshToken?.reveal()).toBe(
          "xoxe-refresh-t1-bot-PLAINTEXT",
        );
        expect((await newOnly.getCredential(USER))?.accessToken.reveal()).toBe(
          "xoxb-access-t1-user-PLAINTEXT",
        );
        expect((await newOnly.getCredential({ connectionId: "T2", kind: "bot" }))?.accessToken.reveal()).toBe(
          "xoxb-access-t2-PLAINTEXT",
        );
        expect((await newOnly.getCredential(BOT))?.version).toBe(v1);
      });

      it("passes over a credential it cannot open and re-seals the rest, naming it by key id", async () => {
        await seedT1();
        // T0 sorts first; its values are sealed under a key no ring below holds any more.
        const gone = await peer(createSealer(`gone:${Buffer.alloc(32, 9).toString("base64")},${OLD_KEY}`));
        await gone.putConnection(connection("T0", [credential("bot", "t0")]), 1_000, []);
        await store.putConnection(connection("T2", [credential("bot", "t2")]), 1_000, []);
        const rotated = await peer(rotatedSealer());
        const T0 = { connectionId: "T0", kind: "bot" as const };
        expect(await rotated.resealBatch(2)).toEqual({
          resealed: 1,
          unreadable: [{ ref: T0, keyId: "gone" }],
          next: BOT,
        });
        expect(await rotated.resealBatch(2, BOT)).toEqual({
          resealed: 2,
          unreadable: [],
          next: { connectionId: "T2", kind: "bot" },
        });
        expect(await rotated.resealBatch(2, { connectionId: "T2", kind: "bot" })).toEqual({
          resealed: 0,
          unreadable: [],
          next: null,
        });
        // A new pass finds only the row it cannot open, and changes nothing.
        expect(await rotated.resealBatch(2)).toEqual({
          resealed: 0,
          unreadable: [{ ref: T0, keyId: "gone" }],
          next: null,
        });
        const newOnly = await peer(newKeyOnlySealer());
        expect((await newOnly.getCredential(USER))?.accessToken.reveal()).toBe(
          "xoxb-access-t1-user-PLAINTEXT",
        );
        expect(
          (await newOnly.getCredential({ connectionId: "T2", kind: "bot" }))?.refreshToken?.reveal(),
        ).toBe("xoxe-refresh-t2-PLAINTEXT");
        expect((await gone.getCredential(T0))?.accessToken.reveal()).toBe("xoxb-access-t0-PLAINTEXT");
      });

      it("names the key of the value that does not open, not of the one that would", async () => {
        const goneKey = `gone:${Buffer.alloc(32, 9).toString("base64")}`;
        const gone = await peer(createSealer(`${goneKey},${OLD_KEY}`));
        await gone.putConnection(connection("T0", [credential("bot", "t0")]), 1_000, []);
        // Refreshed under "old" with a reply that kept the refresh token: access under "old", refresh under "gone".
        const both = await peer(createSealer(`${OLD_KEY},${goneKey}`));
        const T0 = { connectionId: "T0", kind: "bot" as const };
        expect(await refreshKeepingRefreshToken(both, T0, "t0-2")).toBe(true);
        const rotated = await peer(rotatedSealer());
        expect(await rotated.resealBatch(10)).toEqual({
          resealed: 0,
          unreadable: [{ ref: T0, keyId: "gone" }],
          next: null,
        });
      });

      it("re-seals safely alongside a refresh in flight", async () => {
        await seedT1();
        const c = claimOf(await claim(BOT, "a", 1_000));
        const rotated = await peer(rotatedSealer());
        expect((await rotated.resealBatch(100)).resealed).toBe(2);
        expect(
          await store.completeRefresh(
            c,
            refreshed("during-reseal", { refresh: false }),
            1_100,
            event("T1", "refreshed", 1_100),
          ),
        ).toBe(true);
        // The old refresh token, re-sealed under the new key, survived the completion.
        const bot = await rotated.getCredential(BOT);
        expect(bot?.refreshToken?.reveal()).toBe("xoxe-refresh-t1-bot-PLAINTEXT");
        expect(bot?.accessToken.reveal()).toBe("xoxb-access-during-reseal-PLAINTEXT");
        // The completing store still sealed with the old key: one more batch finishes the rotation.
        expect((await rotated.resealBatch(100)).resealed).toBe(1);
        expect((await rotated.resealBatch(100)).resealed).toBe(0);
      });
    });

    describe("changeStamp", () => {
      it("changes after its own writes and after another process's", async () => {
        await seedT1();
        const s0 = store.changeStamp(BOT);
        expect(store.changeStamp(BOT)).toBe(s0);
        const c = claimOf(await claim(BOT, "a", 1_000));
        await store.completeRefresh(c, refreshed("own"), 1_100, event("T1", "refreshed", 1_100));
        const s1 = store.changeStamp(BOT);
        expect(s1).not.toBe(s0);

        const other = await peer();
        const theirs = claimOf(
          await other.claimRefresh(BOT, { owner: "b", nowMs: 1_200, leaseMs: LEASE, freshUntilMs: FORCE }),
        );
        await other.completeRefresh(theirs, refreshed("theirs"), 1_300, event("T1", "refreshed", 1_300));
        await eventually(
          () => store.changeStamp(BOT),
          (s) => s !== s1,
          { what: "the stamp to change after a peer's write" },
        );
        expect((await store.getCredential(BOT))?.accessToken.reveal()).toBe("xoxb-access-theirs-PLAINTEXT");

        const s2 = store.changeStamp(BOT);
        await other.setCredentialStatus(
          "T1",
          ["bot"],
          { status: "needs_reauth", reason: "token_revoked", lastError: null },
          1_400,
          [],
        );
        await eventually(
          () => store.changeStamp(BOT),
          (s) => s !== s2,
          { what: "the stamp to change after a status change" },
        );
      });

      // Catches a regression: every write transaction moved SQLite's stamp, so each refresher pass
      // that claimed nothing (once a second) sent every cached token back to the store.
      it("stays as it was after writes that change nothing", async () => {
        await seedT1();
        await new Promise((resolve) => setTimeout(resolve, 20)); // the seed's own notifications, heard
        const s0 = store.changeStamp(BOT);
        expect(await claimDue("o", 1_000)).toEqual([]); // nothing due
        expect((await claim(BOT, "a", 1_000, 5_000)).kind).toBe("already_fresh");
        expect(await store.claimOutbox({ owner: "o", nowMs: 1_000, leaseMs: LEASE, limit: 10 })).toEqual([]);
        await new Promise((resolve) => setTimeout(resolve, 5)); // past SQLite's 1 ms stamp freshness
        expect(store.changeStamp(BOT)).toBe(s0);
      });
    });
  });
}
