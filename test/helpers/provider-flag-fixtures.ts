// What the provider-flag tests observe: the webhooks a flag writes, the grants that reached Slack.
import type { Store } from "../../src/core/ports.js";
import { parseKeyRing } from "../../src/crypto/key-ring.js";
import { AesGcmSealer } from "../../src/crypto/seal.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { EngineHarness } from "./engine-harness.js";
import { TEST_POSTGRES_URL } from "./pg-schema.js";

const HOUR = 3_600_000;

/** The harness's store, opened as a server with webhooks on opens it (outbox rows written). */
export async function outboxStore(h: EngineHarness): Promise<Store> {
  const sealer = new AesGcmSealer(parseKeyRing(h.key));
  if (h.kind === "sqlite") return SqliteStore.open({ path: h.location, sealer, outbox: true });
  return PostgresStore.open({
    connectionString: TEST_POSTGRES_URL,
    schema: h.location,
    sealer,
    poolMax: 8,
    outbox: true,
  });
}

/** oauth.v2.access requests that reached the emulator, refused or not. */
export function grants(h: EngineHarness): number {
  return h.emu.control.counters().calls["oauth.v2.access"] ?? 0;
}

/**
 * The provider.misconfigured webhooks written since the last call (each one pages someone): they are
 * leased away for ten years, so the next call sees only new ones.
 */
export async function misconfiguredWebhooks(h: EngineHarness): Promise<number> {
  const rows = await h.store.claimOutbox({
    owner: "flag-tests",
    nowMs: h.clock.now() + 365 * 24 * HOUR,
    leaseMs: 10 * 365 * 24 * HOUR,
    limit: 1_000,
  });
  return rows.filter((r) => r.type === "provider.misconfigured").length;
}
