// On-demand refreshes (getToken, withToken, connections.refresh) at the edges of their claim: a
// claim that took longer than its lease to take, and a claim taken where no provider can spend it.
import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import type { Store } from "../../src/core/ports.js";
import { createWarden, type Warden } from "../../src/engine/warden.js";
import { eventually } from "../helpers/eventually.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { interceptStore } from "../helpers/intercept-store.js";
import { slackStub } from "../helpers/slack-stub.js";
import { connection, credential } from "../helpers/store-fixtures.js";
import { openSealedStore } from "../helpers/store-under-test.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

const HOUR = 3_600_000;
const LEASE_MS = 300;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe("on-demand refresh claims", () => {
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

  /** A warden whose store takes `claimDelayMs` (real time) to grant a claim, with T1 imported and due. */
  async function slowClaims(claimDelayMs: number, renew: Store["renewClaim"] | null, log: string[]) {
    const key = randomBytes(32).toString("base64");
    const real = await openSealedStore("sqlite", file.path, key);
    const store = interceptStore(real, {
      claimRefresh: async (claim, ref, options) => {
        const result = await claim(ref, options);
        log.push(`claim:${result.kind}`);
        await new Promise((resolve) => setTimeout(resolve, claimDelayMs)); // a row lock, a full pool
        return result;
      },
      renewClaim: async (realRenew, claim, nowMs, leaseMs) => {
        const held = await (renew ?? realRenew)(claim, nowMs, leaseMs);
        log.push(`renew:${String(held)}`);
        return held;
      },
    });
    const slack = slackStub();
    // Real time, so a lease lapses while a waiter polls; moved 12 h on after the import.
    let offsetMs = 0;
    const clock = { now: () => Date.now() + offsetMs };
    warden = await createWarden({
      store,
      encryptionKey: key,
      providers: { slack: { clientId: "1.2", clientSecret: "s", baseUrl: "http://127.0.0.1:9" } },
      fetch: async () => {
        log.push("sent");
        return slack.fetch();
      },
      clock,
      env: {},
      logger: silent,
      timings: { leaseMs: LEASE_MS, providerTimeoutMs: 200, waitTimeoutMs: 5_000, pollMs: 5 },
    });
    await warden.connections.import({
      id: "T1",
      provider: "slack",
      credentials: { bot: { accessToken: "xoxe.xoxb-T1", refreshToken: "xoxe-T1", expiresIn: 43_200 } },
    });
    offsetMs = 12 * HOUR; // expired: getToken must refresh
    return { warden, slack, store: real };
  }

  it("renews a claim that took long to take before its refresh token leaves", async () => {
    const log: string[] = [];
    const { warden: w, slack } = await slowClaims(LEASE_MS / 2, null, log);
    expect((await w.getToken("T1")).accessToken).toBe("xoxe.xoxb-new-1");
    expect(log.slice(0, 3)).toEqual(["claim:claimed", "renew:true", "sent"]);
    expect(slack.calls()).toBe(1);
  });

  it("hands the claim back when that renewal fails: nothing sent, the journal closed", async () => {
    const {
      warden: w,
      slack,
      store,
    } = await slowClaims(LEASE_MS / 2, async () => {
      throw new TokenwardenError("store_unavailable", "the store is down");
    }, []);
    await expect(w.getToken("T1")).rejects.toMatchObject({ code: "store_unavailable" });
    expect(slack.calls()).toBe(0);
    const after = await store.getCredential({ connectionId: "T1", kind: "bot" });
    expect(after).toMatchObject({ claimUntilMs: null, refreshInDoubt: false });
  });

  it("sends nothing under a claim it could not renew: it waits for whoever holds it now", async () => {
    const log: string[] = [];
    let refused = false;
    const { warden: w, slack } = await slowClaims(
      LEASE_MS / 2,
      async () => {
        if (!refused) {
          refused = true; // as when another process took the lapsed claim over
          return false;
        }
        return true;
      },
      log,
    );
    expect((await w.getToken("T1")).accessToken).toMatch(/^xoxe\.xoxb-new-/);
    expect(log).toContain("renew:false");
    expect(log.indexOf("renew:false")).toBeLessThan(log.indexOf("sent"));
    expect(log.filter((e) => e === "sent")).toHaveLength(1);
    expect(slack.calls()).toBe(1);
  });

  it("a process without the provider configured hands its claim back: the journal closes, nothing is lost", async () => {
    const key = randomBytes(32).toString("base64");
    const store = await openSealedStore("sqlite", file.path, key);
    const clock = new FakeClock(1_000_000);
    // A tool on the store without Slack's client credentials.
    warden = await createWarden({ store, encryptionKey: key, providers: {}, clock, env: {}, logger: silent });
    // Written by a process that runs Slack; expired long ago.
    await store.putConnection(
      connection("T2", [credential("bot", "t2", { expiresAtMs: 10_000 })]),
      1_000,
      [],
    );
    await expect(warden.getToken("T2")).rejects.toMatchObject({ code: "provider_misconfigured" });
    await eventually(
      () => store.getCredential({ connectionId: "T2", kind: "bot" }),
      (c) => c?.claimUntilMs === null,
      { what: "the claim handed back" },
    );
    expect(await store.getCredential({ connectionId: "T2", kind: "bot" })).toMatchObject({
      refreshInDoubt: false,
    });
  });
});
