// One `serve` OS process of the race test: startServer (what `tokenwarden serve` runs) on the shared
// PostgreSQL schema, its background refresher on, its clock set by the parent so all agree.
import { startServer } from "../../src/server/start-server.js";
import { FakeClock } from "../helpers/fake-clock.js";

const clock = new FakeClock(Number(process.env["TW_NOW_MS"]));
const server = await startServer({
  env: process.env,
  port: 0,
  clock,
  httpLog: false,
  healthChecks: false,
  refresher: { intervalMs: 20 },
  timings: { leaseMs: 5_000, providerTimeoutMs: 2_000, waitTimeoutMs: 10_000, pollMs: 5 },
  logger: { debug() {}, info() {}, warn() {}, error() {} },
});
process.on("message", (m: { type: string; nowMs?: number; seq?: number }) => {
  if (m.type === "clock" && m.nowMs !== undefined) {
    clock.set(m.nowMs);
    process.send?.({ type: "ack", seq: m.seq });
  } else if (m.type === "stop") {
    void server.close().then(() => process.exit(0));
  }
});
process.send?.({ type: "listening", url: server.url });
