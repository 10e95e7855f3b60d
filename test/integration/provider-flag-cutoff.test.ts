// The cut-off a process gives markProviderHealthy when it adopts a shared flag is when it learnt of
// it, on its own clock (from a fifth review):
//  1. A flag dated by a clock ahead of this process's does not hold back a process whose credentials
//     work: its first probe after the adoption lifts it.
//  2. A flag taken over by other refused credentials restarts its `sinceMs`, and an adopting process's
//     late success (a request sent before its credentials were refused) lifts nothing.
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../../src/core/ports.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { gate, misconfiguredWebhooks, on, type Wire } from "../helpers/provider-flag-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const MINUTE = 60_000;

describe.each(STORE_KINDS)("provider flag cut-offs on %s (review of f308bff)", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a flag dated by a clock two minutes ahead is lifted by the first successful probe after the adoption, not only once this clock has caught up", async () => {
    h = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await h.installAndImport()).id);
    const harness = h;
    let fixed = false;
    // A process on a host whose clock is two minutes ahead is refused: the flag's sinceMs is T + 2 min.
    const ahead: Clock = { now: () => harness.clock.now() + 2 * MINUTE };
    const skewed = await on(h, "the-secret", { accepted: () => fixed }, ahead);
    await skewed.connections.refresh(ids[0] ?? "").catch(() => undefined);
    expect((await h.store.getProviderState("slack"))?.status).toBe("misconfigured");
    // That host is replaced (a rolling restart); a process on the same secret starts and holds back.
    await skewed.close();
    const proc = await on(h, "the-secret", { accepted: () => fixed });
    expect((await proc.providerState("slack")).appliesHere).toBe(true);
    // The secret is fixed at Slack; the process's probe, sent 11 s after it adopted the flag, goes through.
    fixed = true;
    h.clock.advance(11_000);
    await proc.connections.refresh(ids[1] ?? "");
    const state = await proc.providerState("slack");
    // Expected: lifted at once (README: "a fixed secret is then noticed at once").
    // Actual: the probe's sentAtMs (T + 11 s) <= the adopted cut-off (T + 2 min): nothing is lifted, and
    // every probe for two minutes (unbounded for a larger skew) proves nothing.
    expect({ status: state.status, appliesHere: state.appliesHere }).toEqual({
      status: "ok",
      appliesHere: false,
    });
  });

  it("a flag taken over by other refused credentials restarts its sinceMs, and an adopting process's late success (sent before its credentials were refused) lifts nothing", async () => {
    h = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.installAndImport()).id);
    let regenerated = false;
    // The new secret is deployed to one process before it is regenerated at Slack: refused, page 1.
    const early = await on(h, "the-new-secret", { accepted: () => regenerated });
    await early.connections.refresh(ids[0] ?? "").catch(() => undefined);
    expect(await misconfiguredWebhooks(h)).toBe(1);
    const firstSince = (await h.store.getProviderState("slack"))?.sinceMs;

    // Half a minute on, two processes on the old secret (the flag is not theirs: not held back).
    h.clock.advance(30_000);
    const slowWire: Wire = { accepted: () => !regenerated };
    const slow = await on(h, "the-old-secret", slowWire);
    const refused = await on(h, "the-old-secret", { accepted: () => !regenerated });
    expect((await slow.providerState("slack")).appliesHere).toBe(false);
    // The slow process's refresh is accepted by Slack before the regenerate; its answer is slow.
    const held = gate();
    slowWire.holdNext = held.wait;
    const inFlight = slow.connections.refresh(ids[1] ?? "").catch(() => undefined);
    await eventually(
      () => slowWire.held === true,
      (x) => x,
      { what: "the slow process's accepted request" },
    );
    // The secret is regenerated; the other old-secret process is refused and takes the flag (its
    // request was sent after the flag's last report). The status does not change, but the flag names
    // other credentials now: its sinceMs restarts.
    h.clock.advance(1_000);
    regenerated = true;
    await refused.connections.refresh(ids[2] ?? "").catch(() => undefined);
    const taken = await h.store.getProviderState("slack");
    expect(taken?.status).toBe("misconfigured");
    expect(await misconfiguredWebhooks(h)).toBe(0);
    expect(taken?.sinceMs).not.toBe(firstSince);
    expect(taken?.sinceMs).toBe(h.clock.now()); // the old secret's refusal, not the new one's 31 s before
    // The slow process's refresher syncs: the flag names its credentials, it holds back.
    await slow.refreshDue();
    expect((await slow.providerState("slack")).appliesHere).toBe(true);
    // The answer to the request it sent before its credentials were refused arrives.
    held.open();
    await inFlight;
    // It proves nothing (as in provider-flag-late-answers' second test): the flag stays.
    const after = await h.store.getProviderState("slack");
    // The refused process's next probe (still refused) must page nobody again.
    h.clock.advance(11_000);
    await refused.connections.refresh(ids[2] ?? "").catch(() => undefined);
    expect({ status: after?.status, pagedAgain: await misconfiguredWebhooks(h) }).toEqual({
      status: "misconfigured",
      pagedAgain: 0,
    });
  });
});
