// One OS process of the refresh race: a warden on the shared store, released
// by the parent at one fake instant, calling getToken concurrently.
import { createWarden } from "../../src/engine/warden.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openSealedStore } from "../helpers/store-under-test.js";

const env = process.env as Record<string, string>;
const ids = (env["TW_CONNECTIONS"] ?? "").split(",");
const calls = Number(env["TW_CALLS"] ?? "50");
const mode = env["TW_MODE"] ?? "get";

try {
  // "frozen": every process at one fake instant. "running": the fake instant moves on in real time, so
  // leases really lapse unless their holder renews them.
  const startMs = Number(env["TW_NOW_MS"]);
  // All processes count from the parent's instant, so their clocks agree (no skew between them).
  const startedAt = Number(env["TW_REAL_START_MS"] ?? Date.now());
  const clock =
    env["TW_CLOCK"] === "running"
      ? { now: () => startMs + (Date.now() - startedAt) }
      : new FakeClock(startMs);
  const store = await openSealedStore(
    env["TW_STORE"] as "sqlite" | "postgres",
    env["TW_STORE_LOCATION"] as string,
    env["TW_KEY"] as string,
  );
  const warden = await createWarden({
    store,
    clock,
    providers: {
      slack: {
        clientId: env["TW_CLIENT_ID"] as string,
        clientSecret: env["TW_CLIENT_SECRET"] as string,
        baseUrl: env["TW_SLACK_URL"] as string,
      },
    },
    timings: {
      leaseMs: Number(env["TW_LEASE_MS"] ?? "15000"),
      providerTimeoutMs: Number(env["TW_PROVIDER_TIMEOUT_MS"] ?? "20000"),
      waitTimeoutMs: 60_000,
      pollMs: 10,
    },
    env: {},
  });
  process.send?.({ type: "ready" });
  await new Promise<void>((resolve) => process.once("message", () => resolve()));

  if (mode === "refresher") warden.startRefresher({ intervalMs: 5 });
  const got: Record<string, string[]> = {};
  await Promise.all(
    Array.from({ length: calls }, async (_, i) => {
      const id = ids[i % ids.length] as string;
      const token = await warden.getToken(id, { kind: "bot", minTtlSeconds: 60 });
      got[id] = [...(got[id] ?? []), token.accessToken];
    }),
  );
  await warden.close();
  process.send?.({ type: "result", value: got });
} catch (error) {
  process.send?.({
    type: "error",
    error: error instanceof Error ? `${error.message}\n${error.stack}` : String(error),
  });
  process.exitCode = 1;
}
