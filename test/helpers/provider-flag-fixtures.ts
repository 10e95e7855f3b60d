// What the provider-flag tests observe: the webhooks a flag writes, the grants that reached Slack.
import type { Clock, Store } from "../../src/core/ports.js";
import { parseKeyRing } from "../../src/crypto/key-ring.js";
import { AesGcmSealer } from "../../src/crypto/seal.js";
import type { Warden } from "../../src/engine/warden.js";
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

/** Slack's side of one process: which secret Slack sees (decided when the request is sent), and an optional hold on the answer. */
export interface Wire {
  accepted: () => boolean;
  /** When set, the next answer is held until it resolves (Slack has processed the request already). */
  holdNext?: Promise<void> | undefined;
  held?: boolean;
}

function wired(h: EngineHarness, wire: Wire): typeof globalThis.fetch {
  const real = h.emu.demoApp.clientSecret;
  return async (input, init) => {
    const body = typeof init?.body === "string" ? init.body : undefined;
    const isGrant = body?.includes("grant_type=refresh_token") ?? false;
    const swapped =
      body === undefined || !isGrant
        ? init
        : {
            ...init,
            body: body.replace(
              /client_secret=[^&]*/,
              `client_secret=${wire.accepted() ? real : "refused-at-slack"}`,
            ),
          };
    const res = await globalThis.fetch(input, swapped);
    const hold = isGrant ? wire.holdNext : undefined;
    if (hold !== undefined) {
      wire.holdNext = undefined;
      const text = await res.text();
      wire.held = true;
      await hold;
      return new Response(text, { status: res.status, headers: res.headers });
    }
    return res;
  };
}

export async function on(h: EngineHarness, clientSecret: string, wire: Wire, clock?: Clock): Promise<Warden> {
  return h.peer({
    providers: {
      slack: { clientId: h.emu.demoApp.clientId, clientSecret, baseUrl: h.emu.url },
    },
    fetch: wired(h, wire),
    store: await outboxStore(h),
    ...(clock === undefined ? {} : { clock }),
  });
}

export function gate(): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => {};
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}
