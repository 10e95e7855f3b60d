// drain() is what tests (and flushes) wait on: every webhook due is delivered by the time it returns,
// including one the background loop has claimed but whose claim had not come back when drain() ticked
// (its row is leased, so drain's own tick finds nothing). Seen once in a full run under load: the
// provider.recovered webhook, claimed by the background pass, missing after drain(). Both stores.
import { afterEach, describe, expect, it } from "vitest";
import type { Store } from "../../src/core/ports.js";
import { cryptoRandom } from "../../src/engine/crypto-random.js";
import { WebhookDispatcher } from "../../src/server/webhooks/dispatcher.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { createPgSchema, TEST_POSTGRES_URL } from "../helpers/pg-schema.js";
import { connection, credential, testSealer } from "../helpers/store-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import { createTmpSqlite } from "../helpers/tmp-sqlite.js";
import { WEBHOOK_SECRET, WebhookReceiver } from "./server-harness.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe.each(STORE_KINDS)("webhook dispatcher drain (%s)", (kind) => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function outboxStore(): Promise<Store> {
    let store: Store;
    if (kind === "sqlite") {
      const file = await createTmpSqlite();
      cleanups.push(() => file.remove());
      store = await SqliteStore.open({ path: file.path, sealer: testSealer(), outbox: true });
    } else {
      const pg = await createPgSchema("webhook-drain");
      cleanups.push(() => pg.drop());
      store = await PostgresStore.open({
        connectionString: TEST_POSTGRES_URL,
        schema: pg.schema,
        sealer: testSealer(),
        outbox: true,
      });
    }
    cleanups.push(() => store.close());
    await store.migrate();
    return store;
  }

  it("waits for a background pass whose claim is still on its way", async () => {
    const receiver = new WebhookReceiver();
    await receiver.up();
    cleanups.push(() => receiver.down());
    const real = await outboxStore();
    const clock = new FakeClock(Date.UTC(2026, 5, 1));

    // The background pass's claim takes the row, and its answer is held (a loaded machine).
    let claims = 0;
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let backgroundClaimed = () => {};
    const backgroundClaim = new Promise<void>((resolve) => {
      backgroundClaimed = resolve;
    });
    let drainTicked = () => {};
    const drainTick = new Promise<void>((resolve) => {
      drainTicked = resolve;
    });
    const store = interceptStore(real, {
      claimOutbox: async (claim, options) => {
        const n = ++claims;
        const rows = await claim(options);
        if (n === 1) {
          backgroundClaimed();
          await held;
        } else if (n === 2) drainTicked();
        return rows;
      },
    });
    const dispatcher = new WebhookDispatcher({
      store,
      url: receiver.url,
      secret: WEBHOOK_SECRET,
      clock,
      random: cryptoRandom,
      logger: silent,
      owner: "drain-test",
      fetch: globalThis.fetch,
      reconnectUrl: () => null,
      intervalMs: 3_600_000,
    });
    cleanups.push(() => {
      release(); // a failed assertion leaves the background pass held
      return dispatcher.stop();
    });

    await real.putConnection(connection("T1", [credential("bot", "x")]), clock.now(), []);
    await real.setCredentialStatus(
      "T1",
      "all",
      { status: "needs_reauth", reason: "token_revoked", lastError: "token_revoked" },
      clock.now(),
      [],
    );
    dispatcher.start();
    await backgroundClaim;

    let drained = false;
    const draining = dispatcher.drain().then(() => {
      drained = true;
    });
    // drain() ticking on its own finds the row leased: it must not return before the pass comes back
    // (it may not tick at all meanwhile; 200 ms is ample for one that does).
    await Promise.race([drainTick, new Promise((resolve) => setTimeout(resolve, 200))]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(drained).toBe(false);
    release();
    await draining;
    expect(receiver.received.map((w) => JSON.parse(w.body).type)).toEqual(["connection.needs_reauth"]);
  });
});
