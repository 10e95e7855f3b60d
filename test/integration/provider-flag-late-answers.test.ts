// Provider flags and answers that arrive late (from a fourth review):
//  1. A late refusal of credentials that work by now does not take the flag from the processes
//     refused now, so its next success cannot lift it.
//  2. A process that holds back on a flag naming its credentials (not refused itself) lifts nothing
//     with the answer to a request sent before the refusal; nor in the same millisecond.
//  3. A refused process takes over another refused process's silent flag soon enough that a lifter
//     whose clock is minutes ahead does not find it stale first.
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../../src/core/ports.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { gate, misconfiguredWebhooks, on, type Wire } from "../helpers/provider-flag-fixtures.js";
import { refusedClient } from "../helpers/store-fixtures.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const MINUTE = 60_000;

describe.each(STORE_KINDS)("provider flags and late answers on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a late refusal of the new secret (sent before the regenerate, answered after the old process's refusal) does not take the flag, so the new process's success does not lift it (one page per rollout)", async () => {
    h = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.installAndImport()).id);
    let regenerated = false;
    const newWire: Wire = { accepted: () => regenerated };
    const oldWire: Wire = { accepted: () => !regenerated };
    const newProc = await on(h, "the-new-secret", newWire);
    const oldProc = await on(h, "the-old-secret", oldWire);

    // The new process's refresh is sent before the regenerate (Slack refuses it); its answer is slow.
    const held = gate();
    newWire.holdNext = held.wait;
    const late = newProc.connections.refresh(ids[0] ?? "").catch(() => undefined);
    await eventually(
      () => newWire.held === true,
      (x) => x,
      { what: "the new process's refused request" },
    );
    // The secret is regenerated at Slack (a moment later); the old process is refused: the flag names
    // its secret.
    h.clock.advance(1_000);
    regenerated = true;
    await oldProc.connections.refresh(ids[1] ?? "").catch(() => undefined);
    const oldFlag = await h.store.getProviderState("slack");
    expect(oldFlag?.status).toBe("misconfigured");
    expect(await misconfiguredWebhooks(h)).toBe(1);
    // The new process's refusal arrives now (seconds after the old process's report).
    held.open();
    await late;
    // Its probe, 11 s on, goes through: its credentials work.
    h.clock.advance(11_000);
    await newProc.connections.refresh(ids[2] ?? "").catch(() => undefined);
    const after = await h.store.getProviderState("slack");
    // The old process is still refused (and reporting): the flag is theirs and must stay.
    expect({ status: after?.status, names: after?.clientFingerprint }).toEqual({
      status: "misconfigured",
      names: oldFlag?.clientFingerprint,
    });
    // ... and the old process's next probe pages nobody again.
    h.clock.advance(11_000);
    await oldProc.connections.refresh(ids[1] ?? "").catch(() => undefined);
    expect(await misconfiguredWebhooks(h)).toBe(0);
  });

  it("a process that holds back on a flag naming its own credentials (not refused itself) does not lift it with the answer to a request sent before the refusal (one page per rollout)", async () => {
    h = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.installAndImport()).id);
    let regenerated = false;
    // Two processes on the same (old) secret; Slack accepts it until the regenerate.
    const slowWire: Wire = { accepted: () => !regenerated };
    const refusedWire: Wire = { accepted: () => !regenerated };
    const slow = await on(h, "the-old-secret", slowWire);
    const refused = await on(h, "the-old-secret", refusedWire);

    // The slow process's refresh is accepted by Slack before the regenerate; its answer is slow.
    const held = gate();
    slowWire.holdNext = held.wait;
    const inFlight = slow.connections.refresh(ids[0] ?? "").catch(() => undefined);
    await eventually(
      () => slowWire.held === true,
      (x) => x,
      { what: "the slow process's accepted request" },
    );
    // The secret is regenerated at Slack: the other process is refused, and flags its (the shared) secret.
    regenerated = true;
    await refused.connections.refresh(ids[1] ?? "").catch(() => undefined);
    expect(await misconfiguredWebhooks(h)).toBe(1);
    // The slow process's refresher syncs (nothing due): the flag names its credentials, it holds back.
    await slow.refreshDue();
    expect((await slow.providerState("slack")).appliesHere).toBe(true);
    // The answer to the request it sent before the refusal arrives: it proves nothing about now.
    held.open();
    await inFlight;
    const after = await h.store.getProviderState("slack");
    expect(after?.status).toBe("misconfigured");
    // Its next refresh (the secret is refused) and the refused process's probe page nobody again.
    h.clock.advance(11_000);
    await slow.connections.refresh(ids[2] ?? "").catch(() => undefined);
    await refused.connections.refresh(ids[1] ?? "").catch(() => undefined);
    expect(await misconfiguredWebhooks(h)).toBe(0);
  });

  it("an answer to a request sent in the same millisecond as the refusal, but before it, lifts nothing", async () => {
    h = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.installAndImport()).id);
    let regenerated = false;
    const wire: Wire = { accepted: () => !regenerated };
    const proc = await on(h, "the-old-secret", wire);
    // Sent first (accepted by Slack before the regenerate), answered slowly; the clock does not move.
    const held = gate();
    wire.holdNext = held.wait;
    const inFlight = proc.connections.refresh(ids[0] ?? "").catch(() => undefined);
    await eventually(
      () => wire.held === true,
      (x) => x,
      { what: "the accepted request" },
    );
    regenerated = true;
    await proc.connections.refresh(ids[1] ?? "").catch(() => undefined); // refused: held back, flagged
    expect(await misconfiguredWebhooks(h)).toBe(1);
    held.open();
    await inFlight; // sent before the refusal, in the same millisecond
    expect({
      status: (await h.store.getProviderState("slack"))?.status,
      appliesHere: (await proc.providerState("slack")).appliesHere,
    }).toEqual({ status: "misconfigured", appliesHere: true });
  });

  it("a lifter whose clock is two minutes ahead does not lift a flag a refused process is about to take over", async () => {
    h = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) ids.push((await h.installAndImport()).id);
    const harness = h;
    const refusedA = await on(h, "the-old-secret", { accepted: () => false });
    const refusedB = await on(h, "the-new-secret-mistyped", { accepted: () => false });
    const ahead: Clock = { now: () => harness.clock.now() + 2 * MINUTE };
    const fixed = await on(h, "the-fixed-secret", { accepted: () => true }, ahead);

    await refusedA.connections.refresh(ids[0] ?? "").catch(() => undefined); // page 1, flag names A
    await refusedB.connections.refresh(ids[1] ?? "").catch(() => undefined); // flag names B now
    expect(await misconfiguredWebhooks(h)).toBe(1);
    // The mistyped process is replaced; A is still running and refused, with nothing due: its
    // refresher syncs every few seconds (here once a 30 s).
    await refusedB.close();
    for (let waited = 0; waited < 10 * MINUTE; waited += 30_000) {
      h.clock.advance(30_000);
      await refusedA.refreshDue();
      await fixed.refreshDue();
    }
    const status = (await h.store.getProviderState("slack"))?.status;
    // A's next probe is refused again: same rollout, no second page.
    await refusedA.connections.refresh(ids[0] ?? "").catch(() => undefined);
    expect({ status, pagedAgain: await misconfiguredWebhooks(h) }).toEqual({
      status: "misconfigured",
      pagedAgain: 0,
    });
  });
  it("a shared flag dated by a clock a day ahead does not keep a process's later probes from lifting it", async () => {
    h = await openEngineHarness(kind);
    const { id } = await h.installAndImport();
    // Raised by a host whose clock runs a day ahead, naming no credentials: every process holds back.
    await h.store.setProviderState(refusedClient(h.clock.now() + 24 * 60 * MINUTE));
    const w = await h.peer();
    expect((await w.providerState("slack")).appliesHere).toBe(true);
    h.clock.advance(11 * 60 * MINUTE); // due, and the process's probe goes out after it started
    h.clock.advance(1_000);
    const [row] = await w.connections.refresh(id);
    expect(row).toMatchObject({ refreshed: true });
    expect((await h.store.getProviderState("slack"))?.status).toBe("ok");
  });
});
