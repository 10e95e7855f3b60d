// Invariant 1 across OS processes: 4 processes × 50 concurrent getToken on 20
// connections whose tokens expire at the same instant → exactly 20 refreshes,
// each refresh token presented once, every caller holding a token Slack accepts.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness, workerEnv } from "../helpers/engine-harness.js";
import { raceWorkers } from "../helpers/spawn-workers.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const WORKER = join(import.meta.dirname, "refresh-worker.ts");
const CONNECTIONS = 20;
const PROCESSES = 4;

async function setUp(
  kind: (typeof STORE_KINDS)[number],
  latencyMs = 0,
): Promise<{ h: EngineHarness; ids: string[] }> {
  const h = await openEngineHarness(kind, { emulator: { latencyMs } });
  const ids: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) ids.push((await h.installAndImport()).id);
  h.clock.advance(12 * 3_600_000 + 1); // every token expired at the same instant
  return { h, ids };
}

async function race(
  h: EngineHarness,
  ids: string[],
  extra: Record<string, string> = {},
): Promise<Record<string, string[]>[]> {
  const workers = await raceWorkers<Record<string, string[]>>(PROCESSES, WORKER, () => ({
    ...workerEnv(h, ids),
    TW_REAL_START_MS: String(Date.now()),
    TW_CALLS: "50",
    ...extra,
  }));
  return Promise.all(workers.map((w) => w.result));
}

async function expectExactlyOnce(
  h: EngineHarness,
  ids: string[],
  results: Record<string, string[]>[],
): Promise<void> {
  h.emu.control.setLatency(0); // the checks below need no slow provider
  const counters = h.emu.control.counters();
  expect(counters.refreshes).toBe(CONNECTIONS);
  expect(Object.values(counters.refreshesPerCredential)).toEqual(Array(CONNECTIONS).fill(1));
  expect(counters.maxPresentations).toBe(1);
  expect(counters.invalidRefreshTokenAnswers).toBe(0);
  const calls = results.reduce((n, r) => n + Object.values(r).flat().length, 0);
  expect(calls).toBe(PROCESSES * 50);
  const tokens = new Set(results.flatMap((r) => Object.values(r).flat()));
  for (const token of tokens) {
    const res = await fetch(`${h.emu.url}/api/auth.test`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(((await res.json()) as { ok: boolean }).ok).toBe(true);
  }
  // What the store kept survives the next rotation.
  h.clock.advance(12 * 3_600_000 + 1);
  for (const id of ids) await h.warden.getToken(id);
  expect(h.emu.control.counters().refreshes).toBe(2 * CONNECTIONS);
  expect(h.emu.control.counters().invalidRefreshTokenAnswers).toBe(0);
}

describe.each(STORE_KINDS)("refresh races across processes on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("refreshes each credential exactly once for 4 processes × 50 callers", async () => {
    const setup = await setUp(kind);
    h = setup.h;
    await expectExactlyOnce(h, setup.ids, await race(h, setup.ids));
  }, 120_000);

  it("stays exactly-once with the background refresher running in every process", async () => {
    const setup = await setUp(kind);
    h = setup.h;
    await expectExactlyOnce(h, setup.ids, await race(h, setup.ids, { TW_MODE: "refresher" }));
  }, 120_000);

  it("never spends a refresh token twice when the provider is slower than the lease", async () => {
    const setup = await setUp(kind, 2_500);
    h = setup.h;
    // Lease 1 s on a clock that runs, renewed by its live holder every 333 ms; the provider takes 2.5 s;
    // waiters wait and re-read, never steal the claim. (A shorter lease would also measure CPU stalls
    // of a loaded CI machine rather than the protocol.)
    await expectExactlyOnce(
      h,
      setup.ids,
      await race(h, setup.ids, { TW_LEASE_MS: "1000", TW_PROVIDER_TIMEOUT_MS: "10000", TW_CLOCK: "running" }),
    );
  }, 120_000);
});
