// A rolling client-secret change, the hard cases (from a review of the first version of flags that
// name the refused credentials): a refused process that stays up, two refused secrets, a legacy flag,
// clock skew, concurrent first refusals, and what providerState() and diagnose make of it all.
import { afterEach, describe, expect, it } from "vitest";
import { diagnoseConnection } from "../../src/cli/diagnose/diagnose-connection.js";
import { STALE_FLAG_MS } from "../../src/core/provider-flag-times.js";
import type { Warden } from "../../src/engine/warden.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { grants, misconfiguredWebhooks, outboxStore } from "../helpers/provider-flag-fixtures.js";
import { refusedClient } from "../helpers/store-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

describe.each(STORE_KINDS)("provider flags during a client secret change on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  async function withSecret(harness: EngineHarness, clientSecret: string, extra = {}): Promise<Warden> {
    return harness.peer({
      providers: {
        slack: { clientId: harness.emu.demoApp.clientId, clientSecret, baseUrl: harness.emu.url },
      },
      store: await outboxStore(harness),
      ...extra,
    });
  }

  it("an old-secret process still running but with nothing due does not page a second time", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 3; i++) await h.installAndImport();
    const oldSecret = await withSecret(h, "the-old-secret");
    const newSecret = await h.peer({ store: await outboxStore(h) });
    const raised: unknown[] = [];
    for (const w of [oldSecret, newSecret]) w.on("provider_misconfigured", (e) => raised.push(e));

    h.clock.advance(11 * HOUR);
    await oldSecret.refreshDue(); // refused: the flag names the old secret, one page
    // (One on SQLite; on PostgreSQL concurrent first refusals may page more than once: see the test
    // "the first refusals of concurrent refreshes page once".)
    const pagedAtFirst = raised.length;
    expect(await misconfiguredWebhooks(h)).toBe(pagedAtFirst);
    expect(pagedAtFirst).toBeGreaterThan(0);
    // The new-secret processes refresh everything due, so the old process (still running: a slow
    // rollout, a canary, a worker not yet restarted) finds nothing due. Its refresher still syncs,
    // and each sync reports the refusal again: the flag never looks stale while it runs.
    await newSecret.refreshDue();
    for (let waited = 0; waited <= STALE_FLAG_MS; waited += 60_000) {
      h.clock.advance(60_000);
      await oldSecret.refreshDue();
      await newSecret.refreshDue();
    }
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");
    // Hours later the old process wins a due credential again.
    h.clock.advance(11 * HOUR);
    const before = grants(h);
    await oldSecret.refreshDue();
    // Still the same refused secret, still the same rollout: no second page, and one probe, not a
    // full-speed pass of refusals.
    expect(raised).toHaveLength(pagedAtFirst);
    expect(await misconfiguredWebhooks(h)).toBe(0); // none since the first
    expect(grants(h) - before).toBe(1);
  });

  it("two refused secrets (the new one mistyped): neither process drops its own flag when the other overwrites the fingerprint", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 4; i++) await h.installAndImport();
    const oldSecret = await withSecret(h, "the-old-secret");
    const typo = await withSecret(h, "the-new-secret-mistyped");
    h.clock.advance(11 * HOUR); // all four due

    await oldSecret.refreshDue(); // four refusals (not yet flagged): the flag names the old secret
    await typo.refreshDue(); // its first refusals: the flag now names the typo
    // Both processes have just been refused. Within the next minute each may send one probe at most
    // (the refresher probes once a minute), however the stored fingerprint moves between them.
    const before = grants(h);
    for (let round = 0; round < 3; round++) {
      h.clock.advance(6_000); // past the refresher's five-second sync
      await oldSecret.refreshDue();
      await typo.refreshDue();
    }
    expect(grants(h) - before).toBeLessThanOrEqual(2);
  });

  it("a refusal of other credentials than the ones flagged is announced (event, error log, webhook)", async () => {
    h = await openEngineHarness(kind);
    await h.installAndImport();
    const oldSecret = await withSecret(h, "the-old-secret");
    const typo = await withSecret(h, "the-new-secret-mistyped");
    const raisedByTypo: unknown[] = [];
    typo.on("provider_misconfigured", (e) => raisedByTypo.push(e));
    h.clock.advance(11 * HOUR);
    await oldSecret.refreshDue(); // the old secret is refused: flagged, paged
    expect(await misconfiguredWebhooks(h)).toBe(1);
    // The new secret is refused too: the rollout will not fix anything, and nobody is told. The
    // process on it emits nothing, logs no error, writes no webhook (setProviderState's `changed` is
    // about the status only, and the status was already misconfigured).
    await typo.refreshDue();
    expect((await h.store.getProviderState("slack"))?.clientFingerprint).not.toBeNull();
    expect(raisedByTypo).toHaveLength(1);
  });

  it("a success of a process flagged by a legacy flag does not lift the flag an old-secret process raised since", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    // Upgraded mid-incident: the stored flag predates migration 0009 and names no credentials.
    await h.store.setProviderState(refusedClient(h.clock.now()));
    // A web process on the new secret (no refresher: it reads flags at startup only) is held back by it.
    const web = await h.peer();
    // An old-secret process is refused: the flag now names the old secret, asserted now.
    const oldSecret = await withSecret(h, "the-old-secret");
    const raised: unknown[] = [];
    h.clock.advance(13 * HOUR); // the token has expired
    await oldSecret.connections.refresh(id).catch(() => undefined);
    expect((await h.store.getProviderState("slack"))?.clientFingerprint).not.toBeNull();
    oldSecret.on("provider_misconfigured", (e) => raised.push(e)); // from here on
    // The web process's caller is its probe, and it succeeds: markProviderHealthy writes "ok" over a
    // flag of other credentials, reported a moment ago.
    await web.getToken(id);
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");
    // ...so the old process's next refusal pages again.
    h.clock.advance(61_000);
    await oldSecret.connections.refresh(id).catch(() => undefined);
    expect(raised).toHaveLength(0);
  });

  it("clock skew between processes: a flag re-reported every minute is not lifted as stale", async () => {
    h = await openEngineHarness(kind);
    for (let i = 0; i < 2; i++) await h.installAndImport();
    const harness = h;
    // The old-secret host's clock runs 150 s behind the others' (NTP broken on one host).
    const behind = { now: () => harness.clock.now() - 150_000 };
    const oldSecret = await withSecret(h, "the-old-secret", { clock: behind });
    const raised: unknown[] = [];
    oldSecret.on("provider_misconfigured", (e) => raised.push(e));
    h.clock.advance(11 * HOUR);
    await oldSecret.refreshDue(); // refused, flag raised (asserted at its clock)
    expect(raised).toHaveLength(1);
    // Another process (on the new secret) checks 35 s later: the old process reported 35 s ago.
    h.clock.advance(35_000);
    await h.peer();
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");
  });

  it("the first refusals of concurrent refreshes page once (the flag row does not exist yet)", async () => {
    h = await openEngineHarness(kind);
    const store = await outboxStore(h);
    try {
      // Eight refreshes refused at once (a refresher's slots, or callers of expired tokens), on a store
      // where the provider was never flagged: SELECT ... FOR UPDATE finds no row to lock, so on
      // PostgreSQL every transaction sees "ok" before and reports a change.
      const changed = await Promise.all(
        Array.from({ length: 8 }, () =>
          store.setProviderState(
            refusedClient(h?.clock.now() ?? 0, {
              clientFingerprint: "old",
              assertedAtMs: h?.clock.now() ?? 0,
            }),
          ),
        ),
      );
      expect(changed.filter(Boolean)).toHaveLength(1);
      expect(await misconfiguredWebhooks(h)).toBe(1);
    } finally {
      await store.close();
    }
  });

  it("warden.providerState() says whether the flag holds this warden back, in one documented shape", async () => {
    h = await openEngineHarness(kind);
    const never = await h.warden.providerState("slack"); // no row yet: the default object
    await h.store.setProviderState(
      refusedClient(h.clock.now(), { clientFingerprint: "the-old-secrets", assertedAtMs: h.clock.now() }),
    );
    const flagged = await h.warden.providerState("slack");
    // One shape with a row and without.
    expect(Object.keys(flagged).sort()).toEqual(Object.keys(never).sort());
    expect(never).toMatchObject({ status: "ok", clientFingerprint: null, appliesHere: false });
    // This warden's credentials are not the refused ones, and it refreshes at full speed: the flag is
    // a fact about another process, which a health check of this one reads from appliesHere.
    expect(flagged).toMatchObject({ status: "misconfigured", appliesHere: false });
    const refused = await h.peer({
      providers: {
        slack: { clientId: h.emu.demoApp.clientId, clientSecret: "the-old-secret", baseUrl: h.emu.url },
      },
    });
    expect((await refused.providerState("slack")).appliesHere).toBe(false); // not refused yet
    await h.store.setProviderState(refusedClient(h.clock.now()));
    expect((await refused.providerState("slack")).appliesHere).toBe(true); // a flag naming no one
  });

  it("diagnose connection does not blame our client credentials for a flag of other credentials", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    h.clock.advance(11 * HOUR);
    // Mid-rollout: an old-secret process has just been refused.
    await h.store.setProviderState(
      refusedClient(h.clock.now(), { clientFingerprint: "the-old-secrets", assertedAtMs: h.clock.now() }),
    );
    // This warden (the new secret) refreshes the connection fine: it is not held back at all.
    const before = (await h.warden.connections.get(id)).credentials[0]?.refreshedAtMs;
    await h.warden.refreshDue();
    const after = await h.warden.connections.get(id);
    expect([after.status, after.credentials[0]?.refreshedAtMs]).toEqual(["active", h.clock.now()]);
    expect(before).not.toBe(h.clock.now());
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");
    const { diagnosis } = await diagnoseConnection({
      id,
      store: h.store,
      warden: h.warden,
      baseUrl: h.emu.url,
      nowMs: h.clock.now(),
    });
    // It says "Slack refuses our client credentials ... Refreshes are held back".
    expect(diagnosis.verdict).not.toBe("misconfigured");
  });
});
