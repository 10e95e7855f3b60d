// `GET /v1/connections/:id/token` (warm token, API key checked) under autocannon, beside a bare
// Fastify route returning the same JSON from memory with a bearer check, each server in its own OS
// process, measured in the same run.
//
// On Linux with taskset the load generator (this process) and the server under test are pinned to
// different cores: on a 2-core machine, letting them share both makes the scheduler, not the server,
// decide the figure (runs of the same build ranged 0.56–0.97×). The server's CPU per request is
// printed too: it is what the two servers cost, whatever the load generator beside them does.
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { cpuSeconds, startChild, stopChild } from "./processes.js";
import type { BenchReport } from "./report.js";

const DURATION_S = 5;
const CONNECTIONS = 32;
const API_KEY = "tw_bench_0123456789abcdefghij";
const ROUNDS = 5;

/** Pins every thread of this process to core 0 and returns the command prefix that runs a child on core 1. */
function pinCores(): { prefix: string[]; unpin(): void } | null {
  if (process.platform !== "linux" || availableParallelism() < 2) return null;
  const pin = (cpus: string) =>
    execFileSync("taskset", ["-a", "-p", "-c", cpus, String(process.pid)], { stdio: "ignore" });
  try {
    pin("0");
  } catch {
    return null; // no taskset: unpinned, noisier
  }
  return { prefix: ["taskset", "-c", "1"], unpin: () => pin(`0-${availableParallelism() - 1}`) };
}

function startTarget(args: string[], prefix: string[]): ReturnType<typeof startChild> {
  return startChild(
    [
      ...prefix,
      process.execPath,
      "--import",
      "tsx",
      join(import.meta.dirname, "server-bench-target.ts"),
      ...args,
    ],
    { env: { ...process.env, TOKENWARDEN_API_KEY: API_KEY } },
  );
}

interface Hammered {
  rps: number;
  p99: number;
  errors: number;
  /** Server CPU per request, µs: what the two sides cost, whatever the load generator beside them does. */
  cpuUsPerRequest: number | null;
}

async function hammer(url: string, pid: number): Promise<Hammered> {
  const options = {
    url: `${url}/v1/connections/T0BENCH/token?min_ttl=60`,
    connections: CONNECTIONS,
    headers: { authorization: `Bearer ${API_KEY}` },
  };
  await autocannon({ ...options, duration: 1 }); // warm-up: JIT, caches, keep-alive sockets
  const cpu0 = cpuSeconds((p) => p === pid);
  const r = await autocannon({ ...options, duration: DURATION_S });
  const cpu1 = cpuSeconds((p) => p === pid);
  return {
    rps: r.requests.average,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    cpuUsPerRequest: cpu0 === null || cpu1 === null ? null : ((cpu1 - cpu0) * 1e6) / r.requests.total,
  };
}

/** Runs `target` in its own process, hammers it, stops it. */
async function measure(args: string[], prefix: string[]): Promise<Hammered & { sample: string }> {
  const target = await startTarget(args, prefix);
  try {
    const res = await fetch(`${target.url}/v1/connections/T0BENCH/token?min_ttl=60`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const sample = await res.text();
    if (res.status !== 200) throw new Error(`token route answered ${res.status}: ${sample}`);
    return { ...(await hammer(target.url, target.child.pid ?? 0)), sample };
  } finally {
    await stopChild(target.child);
  }
}

export async function run(): Promise<BenchReport[]> {
  const pinned = pinCores();
  const prefix = pinned?.prefix ?? [];
  // Alternated rounds, median of each side: order must not favour a side, and one slow round must not decide.
  const runs: { served: Hammered[]; bare: Hammered[] } = { served: [], bare: [] };
  try {
    const first = await measure(["serve"], prefix);
    runs.served.push(first);
    runs.bare.push(await measure(["baseline", first.sample], prefix));
    for (let i = 1; i < ROUNDS; i++) {
      runs.served.push(await measure(["serve"], prefix));
      runs.bare.push(await measure(["baseline", first.sample], prefix));
    }
  } finally {
    pinned?.unpin();
  }
  const median = (xs: Hammered[]) =>
    [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)] as Hammered;
  const served = median(runs.served);
  const bare = median(runs.bare);
  const cpu = (h: Hammered) =>
    h.cpuUsPerRequest === null ? "server CPU n/a" : `server CPU ${h.cpuUsPerRequest.toFixed(1)} µs/request`;
  const label = `${CONNECTIONS} connections, ${DURATION_S} s, autocannon, median of ${ROUNDS} alternated runs, ${pinned ? "load generator and server on separate cores" : "cores shared"}`;
  return [
    {
      name: `GET /v1/connections/:id/token, warm token, API key checked (${label})`,
      unit: "req/s",
      subject: {
        label: "tokenwarden serve (SQLite)",
        value: served.rps,
        extra: `p99 ${served.p99} ms, ${served.errors} errors, ${cpu(served)}`,
      },
      baseline: {
        label: "bare Fastify route, same JSON from memory",
        value: bare.rps,
        extra: `p99 ${bare.p99} ms, ${bare.errors} errors, ${cpu(bare)}`,
      },
      aim: "≥ 0.8×",
    },
  ];
}
