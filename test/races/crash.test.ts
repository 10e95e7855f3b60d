// Invariant 6: kill -9 a process while its refreshes are in flight. After a
// restart every affected connection is usable, or needs_reauth with reason
// refresh_response_lost — never silently broken.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NeedsReauthError } from "../../src/core/errors.js";
import { type EngineHarness, FAST_TIMINGS, openEngineHarness, workerEnv } from "../helpers/engine-harness.js";
import { eventually } from "../helpers/eventually.js";
import { spawnWorker } from "../helpers/spawn-workers.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";

const WORKER = join(import.meta.dirname, "refresh-worker.ts");

async function crashMidRefresh(h: EngineHarness, ids: string[]): Promise<void> {
  h.emu.control.setLatency(1_500, "oauth.v2.access");
  const worker = await spawnWorker(WORKER, {
    ...workerEnv(h, ids),
    TW_CALLS: String(ids.length),
    TW_LEASE_MS: String(FAST_TIMINGS.leaseMs),
  });
  worker.send({ type: "go" });
  // Every refresh was journaled as started before its request left the process, and has arrived.
  await eventually(
    () => h.emu.control.counters().calls["oauth.v2.access"] ?? 0,
    (n) => n === ids.length,
    { what: "every refresh request to reach the provider" },
  );
  for (const id of ids) {
    expect((await h.store.getCredential({ connectionId: id, kind: "bot" }))?.refreshInDoubt).toBe(true);
  }
  const exited = new Promise((resolve) => worker.child.once("exit", resolve));
  worker.child.kill("SIGKILL");
  await exited;
  // The provider still rotates what reached it; its answers went nowhere.
  await eventually(
    () => h.emu.control.counters().refreshes,
    (n) => n === ids.length,
    { what: "the provider to finish the orphaned refreshes" },
  );
  h.emu.control.setLatency(0, "oauth.v2.access");
}

describe.each(STORE_KINDS)("a crash mid-refresh on %s", (kind) => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  async function setUp(): Promise<{ h: EngineHarness; ids: string[] }> {
    const harness = await openEngineHarness(kind);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await harness.installAndImport()).id);
    harness.clock.advance(12 * 3_600_000 + 1);
    return { h: harness, ids };
  }

  it("recovers with the journaled refresh token inside the provider's grace window", async () => {
    const setup = await setUp();
    h = setup.h;
    await crashMidRefresh(h, setup.ids);
    h.clock.advance((FAST_TIMINGS.leaseMs ?? 0) + 1); // the dead process's lease lapses; grace (120 s) has not
    for (const id of setup.ids) {
      const token = await h.warden.getToken(id);
      const res = await fetch(`${h.emu.url}/api/auth.test`, {
        method: "POST",
        headers: { authorization: `Bearer ${token.accessToken}` },
      });
      expect(((await res.json()) as { ok: boolean }).ok).toBe(true);
      const refreshed = (await h.warden.connections.events(id)).find((e) => e.type === "refreshed");
      expect(refreshed?.data).toMatchObject({ recoveredLostResponse: true });
    }
  }, 60_000);

  it("names the loss refresh_response_lost once the grace window has passed", async () => {
    const setup = await setUp();
    h = setup.h;
    await crashMidRefresh(h, setup.ids);
    h.clock.advance(10 * 60_000);
    for (const id of setup.ids) {
      const err = await h.warden.getToken(id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NeedsReauthError);
      expect((err as NeedsReauthError).reason).toBe("refresh_response_lost");
      const connection = await h.warden.connections.get(id);
      expect(connection).toMatchObject({ status: "needs_reauth", reason: "refresh_response_lost" });
    }
  }, 60_000);
});
