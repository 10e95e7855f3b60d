// The dispatcher on a fake clock: delivered webhooks are pruned after the retention period, a receiver
// that never answers times out and is retried, one that answers with a huge body is not read whole,
// and a webhook nobody accepts for days becomes a dead letter, pruned the same way.
import { createServer } from "node:http";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cryptoRandom } from "../../src/engine/crypto-random.js";
import { type DispatcherOptions, WebhookDispatcher } from "../../src/server/webhooks/dispatcher.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { connection, credential, testSealer } from "../helpers/store-fixtures.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";
import { WEBHOOK_SECRET, WebhookReceiver } from "./server-harness.js";

const DAY = 86_400_000;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe("webhook outbox retention", () => {
  let file: TmpSqlite;
  let store: SqliteStore;
  const receiver = new WebhookReceiver();
  beforeEach(async () => {
    file = await createTmpSqlite();
    store = await SqliteStore.open({ path: file.path, sealer: testSealer(), outbox: true });
    await store.migrate();
    await receiver.up();
  });
  afterEach(async () => {
    await receiver.down();
    await store.close();
    await file.remove();
  });

  /** T1 dies on day 10: one webhook in the outbox, due. */
  async function oneWebhookDue(): Promise<FakeClock> {
    const clock = new FakeClock(10 * DAY);
    await store.putConnection(connection("T1", [credential("bot", "x")]), clock.now(), []);
    await store.setCredentialStatus(
      "T1",
      "all",
      { status: "needs_reauth", reason: "token_revoked", lastError: "token_revoked" },
      clock.now(),
      [],
    );
    return clock;
  }

  /** A dispatcher to the test receiver on `clock`, keeping delivered webhooks a week. */
  function dispatcherAt(clock: FakeClock, options: Partial<DispatcherOptions> = {}): WebhookDispatcher {
    return new WebhookDispatcher({
      store,
      url: receiver.url,
      secret: WEBHOOK_SECRET,
      clock,
      random: cryptoRandom,
      logger: silent,
      owner: "test",
      fetch: globalThis.fetch,
      reconnectUrl: () => null,
      retentionMs: 7 * DAY,
      ...options,
    });
  }

  it("keeps a delivered webhook for the retention period, then prunes it", async () => {
    const clock = await oneWebhookDue();
    const dispatcher = dispatcherAt(clock);
    expect(await dispatcher.tick()).toBe(1);
    expect(receiver.received).toHaveLength(1);
    const rows = () => {
      const db = new Database(file.path, { readonly: true });
      try {
        return db.prepare("SELECT count(*) FROM outbox").pluck().get();
      } finally {
        db.close();
      }
    };
    clock.advance(6 * DAY);
    await dispatcher.tick();
    expect(rows()).toBe(1); // delivered, kept within the retention period
    clock.advance(2 * DAY);
    await dispatcher.tick();
    expect(rows()).toBe(0);
    expect(receiver.received).toHaveLength(1);
  });

  // An outage fails every connection's refresh: 10,000 connections send tens of thousands of
  // refresh_failed webhooks in a day. A pass must prune more than one batch, or the outbox only grows.
  it("prunes more than one batch of old delivered webhooks in a pass", async () => {
    const clock = new FakeClock(10 * DAY);
    const db = new Database(file.path);
    try {
      const insert = db.prepare(
        `INSERT INTO outbox (id, type, payload, created_at_ms, attempts, delivered_at_ms)
         VALUES (?, 'connection.refresh_failed', '{}', ?, 1, ?)`,
      );
      db.transaction(() => {
        for (let i = 0; i < 2_500; i++) insert.run(`old-${i}`, DAY, DAY);
        insert.run("young", 9 * DAY, 9 * DAY);
      })();
    } finally {
      db.close();
    }
    expect(await dispatcherAt(clock).tick()).toBe(0);
    const left = new Database(file.path, { readonly: true });
    try {
      expect(left.prepare("SELECT id FROM outbox").pluck().all()).toEqual(["young"]);
    } finally {
      left.close();
    }
  });

  it("gives a webhook up after the retry window (a dead letter), says so, and prunes it later", async () => {
    const clock = await oneWebhookDue();
    const outcomes: string[] = [];
    const errors: string[] = [];
    const errorFields: object[] = [];
    const dispatcher = dispatcherAt(clock, {
      logger: {
        ...silent,
        error: (obj, msg) => {
          errors.push(msg ?? "");
          errorFields.push(obj);
        },
      },
      backoffMaxMs: DAY,
      giveUpAfterMs: 3 * DAY,
      onDelivery: (o) => outcomes.push(o),
    });
    receiver.failNext = 1_000; // the receiver answers 500 to everything
    const outboxRows = () => {
      const db = new Database(file.path, { readonly: true });
      try {
        return db.prepare("SELECT attempts, abandoned_at_ms AS abandoned FROM outbox").all();
      } finally {
        db.close();
      }
    };
    // Retried (backoff capped at a day here) until the webhook is three days old...
    for (let i = 0; i < 40 && !outcomes.includes("abandoned"); i++) {
      await dispatcher.tick();
      clock.advance(DAY / 4);
    }
    expect(outcomes.filter((o) => o === "failed").length).toBeGreaterThan(3);
    expect(outcomes.at(-1)).toBe("abandoned");
    expect(errors).toEqual([expect.stringContaining("webhook abandoned")]);
    // A lost page must say whose it was: the operator reaches that customer another way.
    expect(errorFields).toEqual([
      expect.objectContaining({ connectionId: "T1", type: "connection.needs_reauth" }),
    ]);
    const [row] = outboxRows() as Array<{ attempts: number; abandoned: number | null }>;
    expect(row?.abandoned).toBeGreaterThanOrEqual(13 * DAY);
    expect(row?.attempts).toBe(outcomes.length);
    // ...then never tried again, and pruned after the retention period.
    const sent = receiver.received.length;
    clock.advance(6 * DAY);
    await dispatcher.tick();
    expect(receiver.received).toHaveLength(sent);
    expect(outboxRows()).toHaveLength(1);
    clock.advance(2 * DAY);
    await dispatcher.tick();
    expect(outboxRows()).toHaveLength(0);
  });

  it("gives up on a receiver that does not answer within the timeout, and tries again later", async () => {
    const clock = await oneWebhookDue();
    const warnings: Array<Record<string, unknown>> = [];
    const dispatcher = dispatcherAt(clock, {
      timeoutMs: 50,
      logger: { ...silent, warn: (obj) => warnings.push(obj as Record<string, unknown>) },
      // Accepts the request and never answers; only the deadline ends it.
      fetch: (_url, init) =>
        new Promise<Response>((_resolve, reject) => {
          init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
        }),
    });
    expect(await dispatcher.tick()).toBe(1);
    expect(warnings).toEqual([expect.objectContaining({ error: "timeout", attempts: 1 })]);
    const db = new Database(file.path, { readonly: true });
    try {
      expect(db.prepare("SELECT attempts, last_error, delivered_at_ms FROM outbox").get()).toEqual({
        attempts: 1,
        last_error: "timeout",
        delivered_at_ms: null,
      });
    } finally {
      db.close();
    }
  });

  // Sixteen deliveries run at once: a receiver (or a proxy before it) answering with a file, or a
  // stream that goes on, must not have the server hold every byte of it in memory.
  it("takes a 2xx as delivered without reading a huge answer whole", async () => {
    const clock = await oneWebhookDue();
    const total = 64 * 1024 * 1024;
    let written = 0;
    const big = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        const chunk = Buffer.alloc(64 * 1024, 120);
        let open = true;
        res.on("close", () => {
          open = false;
        });
        const pump = () => {
          while (open && written < total) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once("drain", pump);
          }
          if (open) res.end();
        };
        pump();
      });
    });
    await new Promise<void>((resolve) => big.listen(0, "127.0.0.1", resolve));
    try {
      const address = big.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      const outcomes: string[] = [];
      const dispatcher = dispatcherAt(clock, {
        url: `http://127.0.0.1:${port}/hooks`,
        onDelivery: (o) => outcomes.push(o),
      });
      expect(await dispatcher.tick()).toBe(1);
      expect(outcomes).toEqual(["delivered"]);
      // The connection was dropped after the first bytes: the receiver could not send it all.
      expect(written).toBeLessThan(total);
    } finally {
      big.closeAllConnections();
      await new Promise<void>((resolve) => big.close(() => resolve()));
    }
  });
});
