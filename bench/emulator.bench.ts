// Slack emulator throughput on loopback: auth.test and the refresh grant, each beside a bare node:http
// server answering a fixed JSON body, driven by the same undici keep-alive loop. Both servers run in
// their own OS process so the load generator does not share their event loop.
import { Pool } from "undici";
import { type Child, startChild, stopChild } from "./processes.js";
import type { BenchReport } from "./report.js";
import { SHIPPED_CLI } from "./shipped.js";

const DURATION_MS = 3000;
const WARMUP_MS = 500;
const CONCURRENCY = 32;

/** A bare node:http server: reads the body, answers `body` (a fixed JSON document). */
function baselineServer(body: string): Promise<{ child: Child; url: string }> {
  const code = `
const http = require("node:http");
const body = ${JSON.stringify(body)};
const len = Buffer.byteLength(body);
const server = http.createServer((req, res) => {
  req.on("data", () => {});
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", "content-length": len });
    res.end(body);
  });
});
server.keepAliveTimeout = 30000;
server.listen(0, "127.0.0.1", () => console.log("http://127.0.0.1:" + server.address().port));
process.on("SIGTERM", () => server.close(() => process.exit(0)) && server.closeAllConnections());
`;
  return startChild([process.execPath, "-e", code]);
}

/** Runs `concurrency` workers calling `step` back to back; returns completed requests per second. */
async function load(step: (worker: number) => Promise<void>): Promise<number> {
  let stopAt = performance.now() + WARMUP_MS;
  let counting = false;
  let done = 0;
  const worker = async (w: number) => {
    while (performance.now() < stopAt) {
      await step(w);
      if (counting) done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  counting = true;
  const started = performance.now();
  stopAt = started + DURATION_MS;
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
  return done / ((performance.now() - started) / 1000);
}

async function post(
  pool: Pool,
  path: string,
  headers: Record<string, string>,
  body: string,
): Promise<string> {
  const res = await pool.request({ path, method: "POST", headers, body });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}: ${text}`);
  return text;
}

async function control(url: string, name: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${url}/_emulator/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return (await res.json()) as Record<string, unknown>;
}

export async function run(): Promise<BenchReport[]> {
  const emu = await startChild([...SHIPPED_CLI, "emulator", "slack", "--port", "0"], {
    ready: /SLACK_SIGNING_SECRET=\S+\s/,
  });
  const clientId = /SLACK_CLIENT_ID=(\S+)/.exec(emu.out())?.[1] ?? "";
  const clientSecret = /SLACK_CLIENT_SECRET=(\S+)/.exec(emu.out())?.[1] ?? "";
  const reports: BenchReport[] = [];
  try {
    // auth.test
    const install = await control(emu.url, "install", { clientId, botScopes: ["chat:write"] });
    const bot = String(install["access_token"]);
    const authHeaders = {
      authorization: `Bearer ${bot}`,
      "content-type": "application/x-www-form-urlencoded",
    };
    const emuPool = new Pool(emu.url, { connections: CONCURRENCY, pipelining: 1 });
    const sample = await post(emuPool, "/api/auth.test", authHeaders, "");
    const base = await baselineServer(sample);
    const basePool = new Pool(base.url, { connections: CONCURRENCY, pipelining: 1 });
    const emuAuth = await load(() => post(emuPool, "/api/auth.test", authHeaders, "").then(() => undefined));
    const baseAuth = await load(() =>
      post(basePool, "/api/auth.test", authHeaders, "").then(() => undefined),
    );
    reports.push({
      name: "emulator auth.test throughput (loopback, 32 keep-alive connections, emulator in its own process)",
      unit: "req/s",
      subject: { label: "emulator /api/auth.test", value: emuAuth },
      baseline: { label: "bare node:http, fixed JSON body", value: baseAuth },
      aim: "≥ 10,000 req/s absolute; ratio near 1",
    });
    await basePool.close();
    await stopChild(base.child);

    // refresh grant: each worker rotates its own credential (own workspace), chaining refresh tokens.
    const chains: string[] = [];
    for (let i = 0; i < CONCURRENCY; i++) {
      const team = await control(emu.url, "createTeam", { name: `bench-${i}` });
      const inst = await control(emu.url, "install", {
        clientId,
        teamId: team["teamId"],
        botScopes: ["chat:write"],
      });
      chains.push(String(inst["refresh_token"]));
    }
    await control(emu.url, "resetCounters", {});
    const form = { "content-type": "application/x-www-form-urlencoded" };
    const refreshBody = (rt: string) =>
      new URLSearchParams({
        client_id: clientId,
        client_secret: clientSecret,
        grant_type: "refresh_token",
        refresh_token: rt,
      }).toString();
    const step = (pool: Pool) => async (w: number) => {
      const text = await post(pool, "/api/oauth.v2.access", form, refreshBody(chains[w] ?? ""));
      const parsed = JSON.parse(text) as { ok: boolean; refresh_token?: string; error?: string };
      if (!parsed.ok) throw new Error(`refresh failed: ${parsed.error}`);
      chains[w] = parsed.refresh_token ?? "";
    };
    const refreshSample = await post(emuPool, "/api/oauth.v2.access", form, refreshBody(chains[0] ?? ""));
    chains[0] = String((JSON.parse(refreshSample) as { refresh_token: string }).refresh_token);
    const emuRefresh = await load(step(emuPool));
    const counters = await control(emu.url, "counters", {});
    const base2 = await baselineServer(refreshSample);
    const basePool2 = new Pool(base2.url, { connections: CONCURRENCY, pipelining: 1 });
    const saved = chains.slice();
    const baseRefresh = await load(step(basePool2));
    chains.splice(0, chains.length, ...saved);
    reports.push({
      name: "emulator refresh throughput (oauth.v2.access grant_type=refresh_token, 32 chained credentials)",
      unit: "req/s",
      subject: {
        label: "emulator refresh grant",
        value: emuRefresh,
        extra: `${String(counters["refreshes"])} refreshes, max presentations ${String(counters["maxPresentations"])}`,
      },
      baseline: { label: "bare node:http, fixed JSON body, same loop", value: baseRefresh },
      aim: "≥ 0.3× (per call: a form parse, two 48-byte random tokens, a larger JSON answer)",
    });
    await basePool2.close();
    await emuPool.close();
    await stopChild(base2.child);
  } finally {
    await stopChild(emu.child);
  }
  return reports;
}
