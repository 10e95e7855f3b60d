// A process under load for bench/server.bench.ts: either `tokenwarden serve` (startServer on a temp
// SQLite file with one warm connection) or a bare Fastify route answering the same JSON from memory.
// Prints its URL on the first line.
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Fastify from "fastify";
import type * as StartServerModule from "../src/server/start-server.js";
import { shipped } from "./shipped.js";

const mode = process.argv[2];
const body = process.argv[3] ?? "{}";
const apiKey = process.env["TOKENWARDEN_API_KEY"] ?? "";

if (mode === "baseline") {
  // What any server must do at least: route, check a bearer header, answer a fixed JSON document.
  const app = Fastify({ logger: false });
  // Synchronous, as the leanest Fastify route is (no promise per request).
  app.get("/v1/connections/:id/token", (request, reply) => {
    if (request.headers.authorization !== `Bearer ${apiKey}`) {
      reply.code(401).send({ error: "unauthorized" });
      return;
    }
    reply.header("cache-control", "no-store").type("application/json; charset=utf-8").send(body);
  });
  console.log(await app.listen({ port: 0, host: "127.0.0.1" }));
  process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
} else {
  const { startServer } = await shipped<typeof StartServerModule>("server/start-server.js");
  const dir = mkdtempSync(join(tmpdir(), "tw-bench-"));
  const server = await startServer({
    env: {
      NODE_ENV: "production",
      TOKENWARDEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      TOKENWARDEN_API_KEY: apiKey,
      SLACK_CLIENT_ID: "1.2",
      SLACK_CLIENT_SECRET: "bench-secret",
      SLACK_BASE_URL: "http://127.0.0.1:9",
    },
    database: `sqlite:${join(dir, "bench.db")}`,
    port: 0,
    httpLog: false,
    healthChecks: false,
    refresher: false,
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  await server.warden.connections.import({
    id: "T0BENCH",
    provider: "slack",
    credentials: { bot: { accessToken: `xoxb-${randomBytes(20).toString("hex")}`, expiresIn: 30 * 86_400 } },
  });
  console.log(server.url);
  process.on("SIGTERM", () => void server.close().then(() => process.exit(0)));
}
