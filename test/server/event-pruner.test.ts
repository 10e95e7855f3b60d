// The event log's retention inside `serve` (EventPruner) and for library users (warden.pruneEvents), on
// a real SQLite file and a fake clock: what is older than the retention goes, in bounded batches, and
// nothing newer. (Both stores' pruneEvents is in the store contract.)
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { NewEvent } from "../../src/core/types.js";
import { createWarden } from "../../src/engine/warden.js";
import { EventPruner } from "../../src/server/event-pruner.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { eventually } from "../helpers/eventually.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { connection, credential, event, testSealer } from "../helpers/store-fixtures.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

const DAY = 86_400_000;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe("event log retention", () => {
  let file: TmpSqlite;
  let store: SqliteStore;
  let clock: FakeClock;
  beforeEach(async () => {
    clock = new FakeClock(100 * DAY);
    file = await createTmpSqlite();
    store = await SqliteStore.open({ path: file.path, sealer: testSealer() });
    await store.migrate();
    await store.putConnection(connection("T1", [credential("bot", "x")]), 0, []);
  });
  afterEach(async () => {
    await store.close();
    await file.remove();
  });

  /** `old` events from day 1 on, then `recent` from day 50 on (ids in time order, as a log is). */
  async function logOf(old: number, recent: number): Promise<void> {
    const at = (day: number, i: number): NewEvent => event("T1", "refreshed", day * DAY + i);
    await store.appendEvents(Array.from({ length: old }, (_, i) => at(1, i)));
    await store.appendEvents(Array.from({ length: recent }, (_, i) => at(50, i)));
  }
  const count = async () => (await store.listEvents("T1", { limit: 10_000 })).length;

  it("a pass deletes everything older than the retention, in batches, and nothing newer", async () => {
    await logOf(2_500, 30);
    const pruner = new EventPruner({ store, clock, logger: silent, retentionMs: 90 * DAY, batchSize: 1_000 });
    expect(await pruner.prune()).toBe(2_500);
    expect(await count()).toBe(30);
    expect(await pruner.prune()).toBe(0);
    // Day 100 + 45: the rest is older than 90 days now.
    clock.advance(45 * DAY);
    expect(await pruner.prune()).toBe(30);
    expect(await count()).toBe(0);
  });

  it("goes past a young event recorded before old ones (a peer's clock ahead of ours)", async () => {
    await store.appendEvents([event("T1", "checked", 101 * DAY)]); // a day in the future, first by id
    await logOf(2_500, 0);
    const pruner = new EventPruner({ store, clock, logger: silent, retentionMs: 90 * DAY, batchSize: 1_000 });
    expect(await pruner.prune()).toBe(2_500);
    expect(await count()).toBe(1);
  });

  it("ends a run after several short batches in a row instead of chasing writers (a cut-off past now)", async () => {
    let batches = 0;
    // A store where a writer keeps adding events the cut-off covers: every batch finds a few.
    const busy = {
      pruneEvents: async () => {
        batches++;
        return 3;
      },
    };
    const pruner = new EventPruner({ store: busy, clock, logger: silent, retentionMs: 0, batchSize: 1_000 });
    expect(await pruner.prune()).toBe(9);
    expect(batches).toBe(3);
  });

  it("logs a failed pass and tries again at the next one", async () => {
    let calls = 0;
    const flaky = {
      pruneEvents: async () => {
        calls++;
        if (calls === 1) throw new Error("the store went away");
        return 0;
      },
    };
    const warnings: string[] = [];
    const logger = { ...silent, warn: (_obj: object, msg?: string) => void warnings.push(msg ?? "") };
    const pruner = new EventPruner({ store: flaky, clock, logger, retentionMs: 90 * DAY, everyMs: 10 });
    pruner.start();
    try {
      await eventually(
        () => calls,
        (n) => n >= 2,
        { what: "a second pass after the failed one" },
      );
    } finally {
      await pruner.stop();
    }
    expect(warnings).toEqual(["event pruning failed; retrying later"]);
  });

  it("runs on its own once started, and stops", async () => {
    await logOf(40, 5);
    const pruner = new EventPruner({ store, clock, logger: silent, retentionMs: 90 * DAY, everyMs: 10 });
    pruner.start();
    try {
      await eventually(count, (n) => n === 5, { what: "the old events pruned" });
    } finally {
      await pruner.stop();
    }
    await store.appendEvents([event("T1", "checked", DAY)]);
    // Twenty intervals and more: a pruner still running would have deleted it by now.
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await count()).toBe(6); // stopped: nothing pruned any more
  });

  it("warden.pruneEvents does the same for a library user, and refuses a bad date", async () => {
    await logOf(1_200, 7);
    const warden = await createWarden({ store, clock, env: {}, logger: silent });
    expect(await warden.pruneEvents({ before: new Date(10 * DAY), batchSize: 500 })).toBe(1_200);
    expect(await count()).toBe(7);
    await expect(warden.pruneEvents({ before: new Date(Number.NaN) })).rejects.toMatchObject({
      code: "invalid_input",
    });
    expect(await count()).toBe(7);
  });
});
