import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CompletionItem, Store } from "../../src/core/ports.js";
import { createWarden, type Warden } from "../../src/engine/warden.js";
import { eventually } from "../helpers/eventually.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openSealedStore } from "../helpers/store-under-test.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

const HOUR = 3_600_000;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** A Slack rotation reply per call, with the number of calls answered so far. */
function slackStub() {
  let calls = 0;
  const fetch = async () => {
    calls++;
    const n = calls;
    const body = JSON.stringify({
      ok: true,
      access_token: `xoxe.xoxb-new-${n}`,
      refresh_token: `xoxe-new-${n}`,
      expires_in: 43_200,
      token_type: "bot",
      scope: "chat:write",
    });
    return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
  };
  return { fetch, calls: () => calls };
}

/** The real store, with the completion write held until `release()`. */
function gatedCompletions(store: Store) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let waiting = 0;
  const gated = new Proxy(store, {
    get(target, name, receiver) {
      if (name === "completeRefreshes") {
        return async (items: CompletionItem[]) => {
          waiting += items.length;
          await gate;
          return target.completeRefreshes(items);
        };
      }
      const value = Reflect.get(target, name, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { store: gated, release: () => open(), waiting: () => waiting };
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

  it("frees a provider slot when the provider answers, and stores at most as many answers again", async () => {
    const key = randomBytes(32).toString("base64");
    const gated = gatedCompletions(await openSealedStore("sqlite", file.path, key));
    const slack = slackStub();
    const clock = new FakeClock(1_000_000);
    warden = await createWarden({
      store: gated.store,
      encryptionKey: key,
      providers: { slack: { clientId: "1.2", clientSecret: "s", baseUrl: "http://127.0.0.1:9" } },
      fetch: slack.fetch,
      clock,
      env: {},
      logger: silent,
    });
    for (const id of ["T1", "T2", "T3", "T4", "T5"]) {
      await warden.connections.import({
        id,
        provider: "slack",
        credentials: {
          bot: { accessToken: `xoxe.xoxb-${id}`, refreshToken: `xoxe-${id}`, expiresIn: 43_200 },
        },
      });
    }
    clock.advance(11 * HOUR);
    let refreshed = 0;
    warden.on("refreshed", () => {
      refreshed++;
    });
    warden.startRefresher({ intervalMs: 5, concurrencyPerProvider: 2 });
    // Two calls at a time; their answers wait on the store without holding the slots, so two more
    // calls go out. Then four refreshes are in progress, twice the slots: nothing more is claimed.
    await eventually(slack.calls, (n) => n === 4, { what: "four provider calls" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(slack.calls()).toBe(4);
    expect(refreshed).toBe(0); // nothing stored yet: the slots were not held for it
    expect(gated.waiting()).toBeGreaterThan(0);
    gated.release();
    const w = warden;
    await eventually(
      async () => (await w.connections.list({})).items.filter((c) => c.status === "active").length,
      () => slack.calls() === 5,
      { what: "the fifth call" },
    );
    await eventually(
      async () => {
        const tokens = await Promise.all(
          ["T1", "T2", "T3", "T4", "T5"].map((id) => w.getToken(id, { kind: "bot" })),
        );
        return tokens.every((t) => t.accessToken.startsWith("xoxe.xoxb-new-"));
      },
      (done) => done,
      { what: "every connection stored with its new token" },
    );
    expect(slack.calls()).toBe(5);
  });
});
