// `GET /v1/connections/:id/token` (warm token, API key checked) under autocannon, beside a bare
// Fastify route returning the same JSON from memory with a bearer check, each server in its own OS
// process, measured in the same run.
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { join } from "node:path";
import type { Readable } from "node:stream";
import autocannon from "autocannon";
import type { BenchReport } from "./report.js";

const DURATION_S = 5;
const CONNECTIONS = 32;
const API_KEY = "tw_bench_0123456789abcdefghij";

type Child = ChildProcessByStdio<null, Readable, Readable>;

function startTarget(args: string[]): Promise<{ child: Child; url: string }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(import.meta.dirname, "server-bench-target.ts"), ...args],
    {
      cwd: join(import.meta.dirname, ".."),
      env: { ...process.env, TOKENWARDEN_API_KEY: API_KEY },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m?.[1]) resolve({ child, url: m[1] });
    });
    child.stderr.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.on("exit", (code) => reject(new Error(`bench target exited ${code}: ${out}`)));
  });
}

function stop(child: Child): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners("exit");
    child.on("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 3_000).unref();
  });
}

async function hammer(url: string): Promise<{ rps: number; p99: number; errors: number }> {
  const options = {
    url: `${url}/v1/connections/T0BENCH/token?min_ttl=60`,
    connections: CONNECTIONS,
    headers: { authorization: `Bearer ${API_KEY}` },
  };
  await autocannon({ ...options, duration: 1 }); // warm-up: JIT, caches, keep-alive sockets
  const r = await autocannon({ ...options, duration: DURATION_S });
  return { rps: r.requests.average, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

/** Runs `target` in its own process, hammers it, stops it. */
async function measure(args: string[]): Promise<Awaited<ReturnType<typeof hammer>> & { sample: string }> {
  const target = await startTarget(args);
  try {
    const res = await fetch(`${target.url}/v1/connections/T0BENCH/token?min_ttl=60`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    const sample = await res.text();
    if (res.status !== 200) throw new Error(`token route answered ${res.status}: ${sample}`);
    return { ...(await hammer(target.url)), sample };
  } finally {
    await stop(target.child);
  }
}

export async function run(): Promise<BenchReport[]> {
  // Alternated, best of two each: two shared cores make single runs noisy, and order must not favour a side.
  const first = await measure(["serve"]);
  const runs = { served: [first], bare: [await measure(["baseline", first.sample])] };
  runs.served.push(await measure(["serve"]));
  runs.bare.push(await measure(["baseline", first.sample]));
  const best = (xs: Array<Awaited<ReturnType<typeof measure>>>) =>
    xs.reduce((a, b) => (b.rps > a.rps ? b : a));
  const served = best(runs.served);
  const bare = best(runs.bare);
  const label = `${CONNECTIONS} connections, ${DURATION_S} s, autocannon, best of 2 alternated runs`;
  return [
    {
      name: `GET /v1/connections/:id/token, warm token, API key checked (${label})`,
      unit: "req/s",
      subject: {
        label: "tokenwarden serve (SQLite)",
        value: served.rps,
        extra: `p99 ${served.p99} ms, ${served.errors} errors`,
      },
      baseline: {
        label: "bare Fastify route, same JSON from memory",
        value: bare.rps,
        extra: `p99 ${bare.p99} ms, ${bare.errors} errors`,
      },
      aim: "≥ 0.8×",
    },
  ];
}
