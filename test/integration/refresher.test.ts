import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Logger, Store } from "../../src/core/ports.js";
import type { EngineContext } from "../../src/engine/context.js";
import { Refresher } from "../../src/engine/refresher.js";
import { createWarden, type Warden } from "../../src/engine/warden.js";
import { eventually } from "../helpers/eventually.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { createPgSchema, type PgSchema, refuseHandBacks } from "../helpers/pg-schema.js";
import { slackStub } from "../helpers/slack-stub.js";
import { connection, credential } from "../helpers/store-fixtures.js";
import { openSealedStore } from "../helpers/store-under-test.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

const HOUR = 3_600_000;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** The real store, with the completion write held until `release()`. */
function gatedCompletions(store: Store) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let waiting = 0;
  const gated = interceptStore(store, {
    completeRefreshes: async (real, items) => {
      waiting += items.length;
      await gate;
      return real(items);
    },
  });
  return { store: gated, release: () => open(), waiting: () => waiting };
}

/** A warden on `store` whose Slack is `fetch`, with `ids` imported and all due (11 h on). */
async function dueWarden(
  store: Store,
  key: string,
  fetch: () => Promise<Response>,
  clock: FakeClock,
  ids: string[],
  logger: Logger = silent,
): Promise<Warden> {
  const warden = await createWarden({
    store,
    encryptionKey: key,
    providers: { slack: { clientId: "1.2", clientSecret: "s", baseUrl: "http://127.0.0.1:9" } },
    fetch,
    clock,
    env: {},
    logger,
  });
  for (const id of ids) {
    await warden.connections.import({
      id,
      provider: "slack",
      credentials: { bot: { accessToken: `xoxe.xoxb-${id}`, refreshToken: `xoxe-${id}`, expiresIn: 43_200 } },
    });
  }
  clock.advance(11 * HOUR);
  return warden;
}

describe("the background refresher", () => {
  let file: TmpSqlite;
  let warden: Warden | null = null;
  beforeEach(async () => {
    file = await createTmpSqlite();
  });
  afterEach(async () => {
    await warden?.close();
    warden = null;
    await file.remove();
  });

  // A 0, negative or NaN interval polled the store every millisecond (a claim query each time, on
  // PostgreSQL a round trip per instance per ms); a concurrency of 0 claimed nothing, ever, so no token
  // was refreshed ahead. Both were taken silently.
  it.each([
    [{ intervalMs: 0 }, /intervalMs must be a whole number of milliseconds from 1/],
    [{ intervalMs: -5 }, /intervalMs/],
    [{ intervalMs: Number.NaN }, /intervalMs/],
    [{ concurrencyPerProvider: 0 }, /concurrencyPerProvider must be a whole number from 1/],
    [{ concurrencyPerProvider: 2.5 }, /concurrencyPerProvider/],
    [{ concurrencyPerProvider: Number.POSITIVE_INFINITY }, /concurrencyPerProvider/],
  ])("refuses startRefresher(%o) with config_invalid, and starts nothing", async (options, message) => {
    const key = randomBytes(32).toString("base64");
    const slack = slackStub();
    const clock = new FakeClock(1_000_000);
    warden = await dueWarden(await openSealedStore("sqlite", file.path, key), key, slack.fetch, clock, [
      "T1",
    ]);
    const w = warden;
    expect(() => w.startRefresher(options)).toThrow(message);
    expect(() => w.startRefresher(options)).toThrow(expect.objectContaining({ code: "config_invalid" }));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(slack.calls()).toBe(0);
    // Refused before anything was built: good options still start it.
    w.startRefresher({ intervalMs: 5 });
    await eventually(slack.calls, (n) => n === 1, { what: "the due credential refreshed" });
  });

  it("takes startRefresher(null) as no options, as import takes null options", async () => {
    const key = randomBytes(32).toString("base64");
    const slack = slackStub();
    warden = await dueWarden(
      await openSealedStore("sqlite", file.path, key),
      key,
      slack.fetch,
      new FakeClock(1_000_000),
      ["T1"],
    );
    const w = warden;
    expect(() => w.startRefresher(null)).not.toThrow();
    await eventually(slack.calls, (n) => n === 1, { what: "the due credential refreshed" });
  });

  it("frees a provider slot when the provider answers, and holds at most four times its slots", async () => {
    const key = randomBytes(32).toString("base64");
    const gated = gatedCompletions(await openSealedStore("sqlite", file.path, key));
    const slack = slackStub();
    const clock = new FakeClock(1_000_000);
    const ids = Array.from({ length: 10 }, (_, i) => `T${i}`);
    warden = await dueWarden(gated.store, key, slack.fetch, clock, ids);
    let refreshed = 0;
    warden.on("refreshed", () => {
      refreshed++;
    });
    warden.startRefresher({ intervalMs: 5, concurrencyPerProvider: 2 });
    // Two calls at a time; their answers wait on the store without holding the slots, so more calls go
    // out. Once eight refreshes (four times the slots) are answered and waiting to be stored, nothing
    // more is claimed: the last two connections wait for the store.
    await eventually(slack.calls, (n) => n === 8, { what: "eight provider calls" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(slack.calls()).toBe(8);
    expect(refreshed).toBe(0); // nothing stored yet: the slots were not held for it
    expect(gated.waiting()).toBeGreaterThan(0);
    gated.release();
    const w = warden;
    await eventually(
      async () => {
        const tokens = await Promise.all(ids.map((id) => w.getToken(id, { kind: "bot" })));
        return tokens.every((t) => t.accessToken.startsWith("xoxe.xoxb-new-"));
      },
      (done) => done,
      { what: "every connection stored with its new token" },
    );
    expect(slack.calls()).toBe(10);
  });

  it("refills its slots as answers arrive, without waiting for its interval", async () => {
    const key = randomBytes(32).toString("base64");
    const store = await openSealedStore("sqlite", file.path, key);
    const slack = slackStub();
    const clock = new FakeClock(1_000_000);
    const ids = Array.from({ length: 12 }, (_, i) => `T${i}`);
    warden = await dueWarden(store, key, slack.fetch, clock, ids);
    let refreshed = 0;
    warden.on("refreshed", () => {
      refreshed++;
    });
    // The first passes claim four (two slots, two ahead); the other eight are claimed by passes that
    // answers wake, since the timer's next pass is a minute away.
    warden.startRefresher({ intervalMs: 60_000, concurrencyPerProvider: 2 });
    await eventually(
      () => refreshed,
      (n) => n === 12,
      { what: "all twelve refreshed", timeoutMs: 5_000 },
    );
    expect(slack.calls()).toBe(12);
  });

  it("claims ahead of its free slots, and hands back what it has not started when stopped", async () => {
    const key = randomBytes(32).toString("base64");
    const store = await openSealedStore("sqlite", file.path, key);
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    const slack = slackStub();
    let calls = 0;
    const clock = new FakeClock(1_000_000);
    const hanging = async () => {
      calls++;
      await answered;
      return slack.fetch();
    };
    warden = await dueWarden(store, key, hanging, clock, ["T1", "T2", "T3"]);
    warden.startRefresher({ intervalMs: 5, concurrencyPerProvider: 1 });
    await eventually(
      () => calls,
      (n) => n === 1,
      { what: "the first call" },
    );
    // One slot, one call in flight, one more claimed and waiting for the slot; the third is left.
    const third = await store.claimDue({
      owner: "other",
      nowMs: clock.now(),
      leaseMs: 15_000,
      limit: 10,
      provider: "slack",
    });
    expect(third).toHaveLength(1);
    // Stopped while the call is still out: the waiting claim is handed back at once, its journal as
    // it was, so another process may take it now; the call in flight finishes and is stored.
    const stopping = warden.stopRefresher();
    const handedBack = await eventually(
      () =>
        store.claimDue({ owner: "other", nowMs: clock.now(), leaseMs: 15_000, limit: 10, provider: "slack" }),
      (claims) => claims.length > 0,
      { what: "the waiting claim to be handed back" },
    );
    expect(handedBack).toEqual([expect.objectContaining({ previousAttemptLost: false })]);
    expect(handedBack[0]?.ref).not.toEqual(third[0]?.ref);
    answer();
    await stopping;
    expect(calls).toBe(1);
    const w = warden;
    const stored = await Promise.all(["T1", "T2", "T3"].map((id) => w.connections.get(id)));
    expect(stored.filter((c) => c?.credentials[0]?.refreshedAtMs != null)).toHaveLength(1);
  });

  it("claims only credentials of the providers it runs: another provider's due rows are left alone", async () => {
    const key = randomBytes(32).toString("base64");
    const store = await openSealedStore("sqlite", file.path, key);
    const claimed: string[] = [];
    const counting = interceptStore(store, {
      claimDue: async (real, options) => {
        const due = await real(options);
        claimed.push(...due.map((d) => d.ref.connectionId));
        return due;
      },
    });
    const slack = slackStub();
    const clock = new FakeClock(1_000_000);
    // A row of a provider this warden does not configure (another instance runs it), due long ago.
    await store.migrate();
    await store.putConnection(
      connection("G1", [credential("bot", "g1", { refreshDueAtMs: 1 })], "github"),
      0,
      [],
    );
    warden = await dueWarden(counting, key, slack.fetch, clock, ["T1", "T2", "T3"]);
    warden.startRefresher({ intervalMs: 5 });
    await eventually(slack.calls, (n) => n === 3, { what: "the Slack refreshes" });
    await new Promise((resolve) => setTimeout(resolve, 50)); // some more passes
    expect(claimed.sort()).toEqual(["T1", "T2", "T3"]);
    expect(await store.getCredential({ connectionId: "G1", kind: "bot" })).toMatchObject({
      claimUntilMs: null,
      refreshInDoubt: false,
    });
  });

  it("logs a credential whose refresh token it cannot open, with its key id and no secret, and goes on", async () => {
    const key = randomBytes(32).toString("base64");
    const store = await openSealedStore("sqlite", file.path, key);
    await store.migrate();
    const errors: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = {
      ...silent,
      error: (fields: Record<string, unknown>, message: string) => errors.push({ fields, message }),
    };
    const slack = slackStub();
    const clock = new FakeClock(1_000_000);
    warden = await dueWarden(store, key, slack.fetch, clock, ["T1", "T2"], logger);
    // Sealed by an instance with another key, which this one was never given.
    const other = await openSealedStore("sqlite", file.path, `gone:${randomBytes(32).toString("base64")}`);
    await other.putConnection(connection("X1", [credential("bot", "x1", { refreshDueAtMs: 1 })]), 0, []);
    await other.close();
    warden.startRefresher({ intervalMs: 5 });
    await eventually(slack.calls, (n) => n === 2, { what: "the readable credentials' refreshes" });
    await eventually(
      () => errors.length,
      (n) => n > 0,
      { what: "the error log" },
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]?.message).toContain("cannot be opened");
    expect(errors[0]?.fields).toMatchObject({
      connectionId: "X1",
      kind: "bot",
      provider: "slack",
      keyId: "gone",
    });
    expect(JSON.stringify(errors[0]?.fields)).not.toContain("PLAINTEXT");
    expect(await store.getCredential({ connectionId: "X1", kind: "bot" }).catch(() => "unreadable")).toBe(
      "unreadable",
    );
  });

  it("pauses the provider on a 429 also when the tokens have already expired", async () => {
    const key = randomBytes(32).toString("base64");
    let passes = 0;
    const store = interceptStore(await openSealedStore("sqlite", file.path, key), {
      claimDue: (real, options) => {
        passes++;
        return real(options);
      },
    });
    let calls = 0;
    const limited = async () => {
      calls++;
      return new Response(JSON.stringify({ ok: false, error: "ratelimited" }), {
        status: 429,
        headers: { "content-type": "application/json", "retry-after": "60" },
      });
    };
    const clock = new FakeClock(1_000_000);
    const ids = Array.from({ length: 10 }, (_, i) => `R${i}`);
    warden = await dueWarden(store, key, limited, clock, ids);
    clock.advance(2 * HOUR); // past expiry: a failed refresh throws instead of serving the old token
    warden.startRefresher({ intervalMs: 5, concurrencyPerProvider: 1 });
    await eventually(
      () => calls,
      (n) => n >= 1,
      { what: "the first refresh" },
    );
    // Paused for the Retry-After (60 s on the fake clock): a second call within a second of real
    // time (two hundred passes' worth) would mean the 429 was not honoured.
    await expect(
      eventually(
        () => calls,
        (n) => n > 1,
        { timeoutMs: 1_000, what: "a second call" },
      ),
    ).rejects.toThrow(/timed out/);
    expect(passes).toBeGreaterThan(0);
    expect(calls).toBe(1);
  });

  it("stops within its timeout even while a pass is still waiting for the store", async () => {
    let claims = 0;
    const hanging = {
      getProviderState: async () => null,
      claimDue: () => {
        claims++;
        return new Promise<never>(() => {});
      },
    } as unknown as Store;
    const ctx = {
      store: hanging,
      providers: new Map([["slack", {}]]),
      clock: new FakeClock(1_000),
      steadyNow: () => 1_000,
      leaseWindow: () => ({ nowMs: 1_000, leaseMs: 15_000 }),
      logger: silent,
      timings: { leaseMs: 15_000, providerSyncMs: 5_000 },
      owner: "o",
      flaggedProviders: new Set(),
      providerPausedUntil: new Map(),
    } as unknown as EngineContext;
    const refresher = new Refresher(ctx, { intervalMs: 5 });
    refresher.start();
    await eventually(
      () => claims,
      (n) => n === 1,
      { what: "a pass to start claiming" },
    );
    const started = performance.now();
    await refresher.stop(50);
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe("the background refresher on PostgreSQL, when parking an unreadable credential fails", () => {
  let db: PgSchema | undefined;
  let warden: Warden | null = null;
  afterEach(async () => {
    await warden?.close();
    warden = null;
    await db?.drop();
    db = undefined;
  });

  it("hands the claim back, so its journal closes and the next pass parks it", async () => {
    db = await createPgSchema("refresher.test.ts#park-fails");
    const q = `"${db.schema}"`;
    const key = randomBytes(32).toString("base64");
    const store = await openSealedStore("postgres", db.schema, key);
    await store.migrate();
    const slack = slackStub();
    const clock = new FakeClock(1_000_000);
    warden = await dueWarden(store, key, slack.fetch, clock, ["T1"]);
    const other = await openSealedStore("postgres", db.schema, `gone:${randomBytes(32).toString("base64")}`);
    await other.putConnection(connection("X1", [credential("bot", "x1", { refreshDueAtMs: 1 })]), 0, []);
    await other.close();
    // The first write that would park X1 is refused (a failover, a full disk); later ones go through.
    const tries = await refuseHandBacks(db, "X1", 1);
    warden.startRefresher({ intervalMs: 5 });
    const x1 = async () =>
      (
        await db?.admin.query(
          `SELECT claim_id, refresh_in_doubt, next_run_at_ms::float8 AS next_run
             FROM ${q}.credentials WHERE connection_id = 'X1'`,
        )
      )?.rows[0] as { claim_id: string | null; refresh_in_doubt: boolean; next_run: number };
    // The fake clock never reaches the lease's end: only a hand-back frees the row for another pass.
    const parked = await eventually(x1, (r) => r.claim_id === null && r.next_run > clock.now(), {
      what: "X1 parked after its claim was handed back",
    });
    expect(parked).toMatchObject({ refresh_in_doubt: false, next_run: clock.now() + HOUR });
    expect(await tries()).toBe(3); // the park refused, the hand-back, the next pass's park
    expect(slack.calls()).toBe(1); // T1 only: X1's token was never sent
  });
});
