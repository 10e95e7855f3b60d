// A credential refused with client_id_mismatch (a warden running another app's client refreshed it)
// is held back alone (refresh_failing, reason provider_misconfigured), not the provider: what the
// right client, a flagged provider's probe and `diagnose connection` make of that state.
import { afterEach, describe, expect, it } from "vitest";
import { diagnoseConnection } from "../../src/cli/diagnose/diagnose-connection.js";
import { clientFingerprint } from "../../src/providers/client-fingerprint.js";
import { type EngineHarness, grantTokens, openEngineHarness } from "../helpers/engine-harness.js";
import { refusedClient } from "../helpers/store-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const HOUR = 3_600_000;

/** A workspace installed through a previous app (its client id recorded), refreshed by this warden. */
async function leftover(h: EngineHarness): Promise<string> {
  const legacy = h.emu.control.createApp({ name: "Legacy App" });
  const team = h.emu.control.createTeam({ name: "Old" });
  const install = h.emu.control.install({ clientId: legacy.clientId, teamId: team.teamId });
  await h.warden.connections.import({
    id: "old",
    provider: "slack",
    credentials: { bot: { ...grantTokens(install), providerData: { client_id: legacy.clientId } } },
    metadata: { team_id: team.teamId },
  });
  return "old";
}

describe.each(STORE_KINDS)("client_id_mismatch on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("diagnose connection does not call a credential of another app's client an unreachable Slack", async () => {
    h = await openEngineHarness(kind);
    const id = await leftover(h);
    h.clock.advance(11 * HOUR);
    const [r] = await h.warden.connections.refresh(id);
    expect(r).toMatchObject({ refreshed: false, error: "client_id_mismatch" });
    const c = await h.warden.connections.get(id);
    expect([c.status, c.reason]).toEqual(["refresh_failing", "provider_misconfigured"]);

    const { diagnosis } = await diagnoseConnection({
      id,
      store: h.store,
      warden: h.warden,
      baseUrl: "http://127.0.0.1:3003",
      nowMs: h.clock.now(),
    });
    // Slack is reachable and answered; the credential belongs to another client id. Calling it
    // "unreachable" with a "check the network" fix sends the operator the wrong way.
    expect(diagnosis.causes.map((k) => k.code)).not.toContain("provider_unreachable");
    expect(diagnosis.verdict).toBe("misconfigured");
  });
});

describe.each(STORE_KINDS)("client_id_mismatch as the flagged provider's probe on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a probe answered client_id_mismatch (our client accepted) unflags the provider; healthy callers are not refused", async () => {
    h = await openEngineHarness(kind);
    const old = await leftover(h);
    const { id: fine } = await h.installAndImport();
    h.clock.advance(13 * HOUR); // every access token has expired
    // Slack refused these very client credentials a while ago (the flag names them), so every process
    // sending them holds back to one probe a minute.
    const { clientId, clientSecret } = h.emu.demoApp;
    await h.store.setProviderState(
      refusedClient(h.clock.now(), {
        clientFingerprint: clientFingerprint(clientId, clientSecret),
        assertedAtMs: h.clock.now(),
      }),
    );

    // A new process starts (it reads the flag) and its probe happens to be the leftover credential:
    // Slack accepted our client id and secret and refused only that token.
    const right = await h.peer();
    h.clock.advance(1_000); // its probe goes out after it learnt of the flag
    expect((await right.connections.refresh(old))[0]).toMatchObject({
      refreshed: false,
      error: "client_id_mismatch",
    });
    expect((await right.connections.get(old)).credentials[0]?.lastError).toBe("client_id_mismatch");
    expect(h.emu.control.counters().invalidRefreshTokenAnswers).toBeGreaterThan(0);

    // That answer proves our client credentials work: the provider should not stay flagged, and a
    // healthy connection's caller should get its token rather than provider_misconfigured.
    const state = (await right.providerState("slack")).status;
    await expect(right.getToken(fine)).resolves.toMatchObject({ kind: "bot" });
    expect(state).toBe("ok");
    await expect(right.getToken(fine)).resolves.toMatchObject({ kind: "bot" });
  });
});

describe.each(STORE_KINDS)("client_id_mismatch from another instance on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a staging instance's client_id_mismatch does not make a correctly configured instance refuse a token it can refresh", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    await h.warden.connections.refresh(id); // the credential now records the production client id
    const staging = h.emu.control.createApp({ name: "staging" });
    const wrong = await h.peer({
      providers: {
        slack: { clientId: staging.clientId, clientSecret: staging.clientSecret, baseUrl: h.emu.url },
      },
    });
    h.clock.advance(13 * HOUR); // expired
    // The staging instance's refresher gets there first: client_id_mismatch, the credential held back.
    await wrong.refreshDue();
    const held = (await h.warden.connections.get(id)).credentials[0];
    expect([held?.status, held?.lastError]).toEqual(["refresh_failing", "client_id_mismatch"]);
    // Production's caller: its own client can refresh this credential (the mismatch was the other
    // instance's), so it should get a token, not a backoff the staging instance earned.
    await expect(h.warden.getToken(id)).resolves.toMatchObject({ kind: "bot" });
  });
});
