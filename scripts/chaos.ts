// Opt-in chaos soak (`npm run chaos`; CI does not run it). The Slack emulator in its own process, a
// store, W worker processes (scripts/chaos-worker.ts) each running a warden with its refresher and
// callers, and faults injected on a schedule derived from --seed: latency, lost answers, 5xx, 429,
// hangs past the provider timeout, kill -9 of a worker and its restart. Then faults stop, everything
// settles, and the invariants are checked. The schedule replays from the seed; the OS's timing does not.
import { type ChildProcess, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import pg from "pg";
import { startChild, stopChild } from "../bench/processes.js";
import { SHIPPED_CLI } from "../bench/shipped.js";
import { parseKeyRing } from "../src/crypto/key-ring.js";
import { AesGcmSealer } from "../src/crypto/seal.js";
import { DEFAULT_TIMINGS } from "../src/engine/context.js";
import { createWarden, generateKey, type Store, type Warden } from "../src/index.js";
import { openStore } from "../src/store/open-store.js";
import { appender, hashToken, observeRefreshes, type WorkerConfig } from "./chaos-worker.js";

const { values: flags } = parseArgs({
  options: {
    seed: { type: "string", default: String(Math.floor(Math.random() * 2 ** 31)) },
    duration: { type: "string", default: "120" },
    connections: { type: "string", default: "40" },
    workers: { type: "string", default: "4" },
    store: { type: "string", default: "sqlite" },
    // Access tokens live this long (the emulator's --access-ttl); the refresh margin is half of it, so
    // each connection rotates every 7–10 s. Short expires_in rather than the emulator's clock advance:
    // the wardens run on the real clock, and moving the emulator's alone would be clock skew, which
    // makes callers' tokens expired at Slack by construction.
    ttl: { type: "string", default: "20" },
    // Seconds a hang may run past the provider timeout (below). Above 6 the stacked late answer can
    // happen; `--late 30` shows the soak failing on it (a check of the soak itself).
    late: { type: "string", default: "6" },
  },
});
const SEED = Number(flags.seed);
const DURATION_MS = Number(flags.duration) * 1000;
const CONNECTIONS = Number(flags.connections);
const WORKERS = Number(flags.workers);
const WORKER = join(import.meta.dirname, "chaos-worker.ts");
const PG_URL = process.env["TOKENWARDEN_TEST_POSTGRES_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
/** Long enough for a holder killed at the very end: its lease lapses (30 s), then the refresher retries. */
const SETTLE_MS = 90_000;

// ---- the fault schedule ------------------------------------------------------------------------------

/** mulberry32: a small deterministic PRNG, so a seed names one schedule. */
function prng(seed: number): (lo: number, hi: number) => number {
  let a = seed >>> 0;
  return (lo, hi) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return lo + Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo + 1));
  };
}

type FaultKind = "lost_response" | "http_500" | "internal_error" | "ratelimited" | "hang";
type Action = { at: number } & (
  | { kind: "latency"; ms: number }
  | { kind: "fault"; fault: FaultKind; times: number; hangMs?: number; retryAfterSeconds?: number }
  | { kind: "kill"; worker: number; restartAfterMs: number }
);

/**
 * Why these bounds: a hung refresh mints its tokens at the emulator when the hang ends (latency and hang
 * come before the handler). Its sender gave up at the provider timeout (20 s) and retries no sooner than
 * the backoff floor (10 s) later, and a killed sender's claim is taken over only after the lease (30 s).
 * Latency + hang stays under timeout + backoff floor (30 s), itself under timeout + lease, so every late
 * answer mints before the retry does. Later ones (30–55 s) are the known "stacked late answer" artefact:
 * a sibling minted after the retry's supersedes the stored refresh token. It is not provoked by default.
 */
const MAX_LATENCY_MS = 3_000;
const HANG_PAST_TIMEOUT_MS = [1_000, Number(flags.late) * 1000] as const;

function schedule(seed: number, durationMs: number, workers: number): Action[] {
  const int = prng(seed);
  const actions: Action[] = [];
  for (let at = int(1_000, 3_000); at < durationMs; at += int(2_000, 5_000)) {
    const roll = int(0, 99);
    if (roll < 15) {
      actions.push({ at, kind: "latency", ms: int(200, MAX_LATENCY_MS) });
      actions.push({ at: at + int(3_000, 10_000), kind: "latency", ms: 0 });
    } else if (roll < 35) actions.push({ at, kind: "fault", fault: "lost_response", times: int(1, 3) });
    else if (roll < 50) actions.push({ at, kind: "fault", fault: "http_500", times: int(1, 5) });
    else if (roll < 60) actions.push({ at, kind: "fault", fault: "internal_error", times: int(1, 3) });
    else if (roll < 75) {
      const retryAfterSeconds = int(1, 5);
      actions.push({ at, kind: "fault", fault: "ratelimited", times: int(1, 5), retryAfterSeconds });
    } else if (roll < 85) {
      const hangMs = DEFAULT_TIMINGS.providerTimeoutMs + int(...HANG_PAST_TIMEOUT_MS);
      actions.push({ at, kind: "fault", fault: "hang", times: 1, hangMs });
    } else actions.push({ at, kind: "kill", worker: int(0, workers - 1), restartAfterMs: int(500, 4_000) });
  }
  return actions.filter((a) => a.at < durationMs).sort((a, b) => a.at - b.at);
}

// ---- the emulator, the store and the workers ------------------------------------------------------------

type Emulator = Awaited<ReturnType<typeof startEmulator>>;

async function startEmulator() {
  const cmd = [...SHIPPED_CLI, "emulator", "slack", "--port", "0", "--access-ttl", String(flags.ttl)];
  const { child, url, out } = await startChild(cmd, { ready: /SLACK_SIGNING_SECRET=\S+\s/ });
  const control = async (name: string, body?: unknown): Promise<Record<string, unknown>> => {
    const init = body === undefined ? {} : { method: "POST", body: JSON.stringify(body) };
    const res = await fetch(`${url}/_emulator/${name}`, {
      ...init,
      headers: { "content-type": "application/json" },
    });
    if (!res.ok) throw new Error(`emulator ${name}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const secret = (name: string) => new RegExp(`${name}=(\\S+)`).exec(out())?.[1] ?? "";
  return {
    slack: { baseUrl: url, clientId: secret("SLACK_CLIENT_ID"), clientSecret: secret("SLACK_CLIENT_SECRET") },
    control,
    stop: () => stopChild(child),
  };
}

/** A SQLite file in `dir`, or a private PostgreSQL schema that `drop()` removes. */
function storeUrl(dir: string): { database: string; drop(): Promise<void> } {
  if (flags.store === "sqlite") return { database: `sqlite:${join(dir, "chaos.db")}`, drop: async () => {} };
  if (flags.store !== "postgres") throw new Error(`--store must be sqlite or postgres, not ${flags.store}`);
  const schema = `tw_chaos_${process.pid}`;
  const url = new URL(PG_URL);
  url.searchParams.set("schema", schema);
  const drop = async () => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  };
  return { database: url.toString(), drop };
}

/** N workspaces installed at the emulator, their bot tokens imported: short-lived, rotating. */
async function importConnections(emu: Emulator, warden: Warden): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const { teamId } = (await emu.control("createTeam", { name: `Chaos ${i}` })) as { teamId: string };
    const install = await emu.control("install", {
      clientId: emu.slack.clientId,
      teamId,
      botScopes: ["chat:write"],
    });
    const bot = {
      accessToken: String(install["access_token"]),
      refreshToken: String(install["refresh_token"]),
      expiresIn: Number(install["expires_in"]),
    };
    await warden.connections.import({ id: teamId, provider: "slack", credentials: { bot } });
    ids.push(teamId);
  }
  return ids;
}

type Workers = ReturnType<typeof workerPool>;

/** The worker processes: started, killed with SIGKILL, restarted; any other exit is a crash. */
function workerPool(config: Omit<WorkerConfig, "logPath">, dir: string) {
  const slots: Array<{ child: ChildProcess; logPath: string } | null> = [];
  const crashes: string[] = [];
  const killed = new Set<ChildProcess>();
  const children = new Set<ChildProcess>();
  const restarts: Promise<void>[] = [];
  let started = 0;
  let stopping = false;

  async function start(index: number): Promise<void> {
    const logPath = join(dir, `worker-${index}.${started++}.jsonl`);
    const env = { ...process.env, CHAOS_WORKER: JSON.stringify({ ...config, logPath }) };
    const child = fork(WORKER, [], {
      execArgv: ["--import", "tsx"],
      env,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    slots[index] = { child, logPath };
    children.add(child);
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code, signal) => {
        if (slots[index]?.child === child) slots[index] = null;
        if (!killed.has(child) && !(stopping && code === 0))
          crashes.push(`worker ${index} exited with ${code ?? signal}`);
        reject(new Error(`worker ${index} exited before it was ready`));
      }),
    );
    exited.catch(() => {});
    await Promise.race([new Promise((resolve) => child.once("message", resolve)), exited]);
  }

  /** Refreshes the worker has sent and not yet heard back about (from its log). */
  function inFlight(index: number): number {
    const slot = slots[index];
    if (!slot) return 0;
    let text: string;
    try {
      text = readFileSync(slot.logPath, "utf8");
    } catch {
      return 0; // still starting: no log yet
    }
    return text.split('"t":"send"').length - text.split('"t":"done"').length;
  }

  /** SIGKILL, preferably while a refresh is in flight (waiting up to 8 s for one), then a restart later. */
  async function kill(index: number, restartAfterMs: number): Promise<string> {
    for (let waited = 0; waited < 8_000 && slots[index] && inFlight(index) === 0; waited += 20)
      await sleep(20);
    const slot = slots[index];
    if (!slot) return `(worker ${index} is down)`;
    const during = inFlight(index) > 0 ? "mid-refresh" : "idle";
    killed.add(slot.child);
    slot.child.kill("SIGKILL");
    // A worker killed again while it starts rejects its start; the kill scheduled its next restart.
    restarts.push(
      sleep(restartAfterMs)
        .then(() => start(index))
        .catch(() => {}),
    );
    return `kill -9 worker ${index} (${during}), restart in ${restartAfterMs} ms`;
  }

  /** Asks every worker to stop; each closes its warden (in-flight refreshes stored) and exits 0. */
  async function stop(): Promise<void> {
    await Promise.all(restarts);
    stopping = true;
    const live = slots.flatMap((s) =>
      s && s.child.exitCode === null && s.child.signalCode === null ? [s.child] : [],
    );
    await Promise.all(live.map((c) => new Promise((resolve) => c.once("exit", resolve).send("stop"))));
  }

  /** Every worker ever started that is still running, killed, and waited for: nothing writes after. */
  async function killAll(): Promise<void> {
    const live = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
    await Promise.all(
      live.map((c) => {
        const exited = new Promise((resolve) => c.once("exit", resolve));
        c.kill("SIGKILL");
        return exited;
      }),
    );
  }

  const restarted = () => Promise.all(restarts);
  const kills = () => killed.size;
  return { start, kill, stop, killAll, restarted, crashes, kills };
}

async function runSchedule(actions: Action[], emu: Emulator, workers: Workers): Promise<void> {
  const start = Date.now();
  let latencyMs = 0;
  const setLatency = (ms: number) => emu.control("setLatency", { ms, method: "oauth.v2.access" });
  for (const a of actions) {
    await sleep(Math.max(0, start + a.at - Date.now()));
    let what: string;
    if (a.kind === "latency") {
      latencyMs = a.ms;
      await setLatency(latencyMs);
      what = `latency ${a.ms} ms on oauth.v2.access`;
    } else if (a.kind === "fault") {
      const { fault: kind, times, hangMs, retryAfterSeconds } = a;
      await emu.control("fault", { method: "oauth.v2.access", kind, times, hangMs, retryAfterSeconds });
      what = `${kind} ×${times}${hangMs ? `, ${hangMs} ms` : ""}${retryAfterSeconds ? `, Retry-After ${retryAfterSeconds} s` : ""}`;
    } else {
      // A slow provider for a moment, so the kill is likely to land while a refresh is in flight.
      await setLatency(Math.max(latencyMs, 2_000));
      what = await workers.kill(a.worker, a.restartAfterMs);
      await setLatency(latencyMs);
    }
    console.log(`  +${(a.at / 1000).toFixed(1).padStart(6)} s  ${what}`);
  }
}

/** Everything a run has: what settles and checks read. */
interface Run {
  emu: Emulator;
  warden: Warden;
  store: Store;
  ids: string[];
  workers: Workers;
  dir: string;
}

/** Credentials not back to normal yet: not active, claimed, or with a refresh in doubt. */
async function unsettled({ store, ids }: Run): Promise<string[]> {
  const credentials = await Promise.all(
    ids.map((id) => store.getCredential({ connectionId: id, kind: "bot" })),
  );
  return ids.filter((_, i) => {
    const c = credentials[i];
    return c?.status !== "active" || c.claimUntilMs !== null || c.refreshInDoubt;
  });
}

/**
 * Faults off, killed workers back, and time for every connection to recover. One still in backoff
 * after that (an expired token whose refresh failed several times in a row waits minutes, by design)
 * is refreshed by hand, as an operator would; how many needed it is reported.
 */
async function settle(run: Run): Promise<string> {
  await run.emu.control("clearFaults", {});
  await run.emu.control("setLatency", { ms: 0, method: "oauth.v2.access" });
  await run.workers.restarted();
  const deadline = Date.now() + SETTLE_MS;
  let open = await unsettled(run);
  for (; open.length > 0 && Date.now() < deadline; open = await unsettled(run)) await sleep(1_000);
  const forced = await Promise.allSettled(open.map((id) => run.warden.connections.refresh(id)));
  await run.workers.stop();
  const failed = forced.filter((r) => r.status === "rejected").length;
  return `${open.length} unsettled after ${SETTLE_MS / 1000} s, refreshed by hand (${failed} failed)`;
}

// ---- the invariants ---------------------------------------------------------------------------------

type Line = Record<string, unknown> & { t: string; at: number };
type Attempt = { sentAt: number; doneAt: number; outcome: string };
type Result = [name: string, pass: boolean, detail: string];

async function readLogs(dir: string): Promise<Line[][]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".jsonl"));
  const texts = await Promise.all(names.map((n) => readFile(join(dir, n), "utf8")));
  return texts.map((t) => t.split("\n").flatMap((l) => (l === "" ? [] : [JSON.parse(l) as Line])));
}

/** Every refresh attempt by token hash; a send without its "done" (a killed process) stays unknown. */
function attemptsOf(files: Line[][]): Map<string, Attempt[]> {
  const byToken = new Map<string, Attempt[]>();
  for (const lines of files) {
    const open = new Map<string, Attempt>(); // single flight within a process: one send per token at a time
    for (const l of lines) {
      const h = l["h"] as string;
      if (l.t === "send") {
        const a = { sentAt: l.at, doneAt: Number.POSITIVE_INFINITY, outcome: "unknown" };
        byToken.set(h, [...(byToken.get(h) ?? []), a]);
        open.set(h, a);
      } else if (l.t === "done") Object.assign(open.get(h) ?? {}, { doneAt: l.at, outcome: l["outcome"] });
    }
  }
  return byToken;
}

/**
 * Invariant 1: a refresh token the emulator saw more than once was first sent by an attempt whose outcome
 * stayed unknown, and nobody sent it again after a definite answer (spent or refused) had come back.
 * Faults the emulator answers before its refresh logic (5xx, 429, internal_error) are no presentation.
 */
async function singleFlight(emu: Emulator, files: Line[][]): Promise<Result> {
  const c = (await emu.control("counters")) as {
    refreshTokenPresentations: Record<string, number>;
    maxPresentations: number;
    invalidRefreshTokenAnswers: number;
    refreshes: number;
  };
  const attempts = attemptsOf(files);
  const repeated = Object.entries(c.refreshTokenPresentations).filter(([, n]) => n > 1);
  let bad = 0;
  for (const [token] of repeated) {
    const tries = (attempts.get(hashToken(token)) ?? []).filter((a) => a.outcome !== "fault");
    tries.sort((a, b) => a.sentAt - b.sentAt);
    const afterAnswer = tries.some((later, k) =>
      tries.slice(0, k).some((e) => e.outcome !== "unknown" && e.doneAt < later.sentAt),
    );
    if (tries.length < 2 || tries[0]?.outcome !== "unknown" || afterAnswer) {
      bad++;
      console.log(`    refresh token ${hashToken(token)}: ${JSON.stringify(tries)}`);
    }
  }
  const unknown = [...attempts.values()].flat().filter((a) => a.outcome === "unknown").length;
  const detail = `${c.refreshes} refreshes, ${repeated.length} tokens presented >1× (max ${c.maxPresentations}), ${unknown} unknown outcomes, ${bad} unexplained, ${c.invalidRefreshTokenAnswers} invalid_refresh_token`;
  return ["1 a refresh token presented twice followed an unknown outcome", bad === 0, detail];
}

/** Invariant 4: per connection, no more needs_reauth emissions (all processes) than episodes (event log). */
async function emissionsPerEpisode(warden: Warden, ids: string[], lines: Line[]): Promise<Result> {
  let episodes = 0;
  let over = 0;
  for (const id of ids) {
    const mine = (await warden.connections.events(id, { limit: 500 })).filter(
      (e) => e.type === "needs_reauth",
    );
    episodes += mine.length;
    if (lines.filter((l) => l.t === "needs_reauth" && l["id"] === id).length > mine.length) over++;
  }
  const emitted = lines.filter((l) => l.t === "needs_reauth").length;
  const detail = `${emitted} emissions, ${episodes} episodes, ${over} connections over`;
  return ["4 at most one needs_reauth emission per episode", over === 0, detail];
}

/** Sums each process's last stats line (a killed one loses at most its last second: counts only). */
function totals(files: Line[][]): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const lines of files) {
    const last = lines.findLast((l) => l.t === "stats") ?? {};
    for (const [k, v] of Object.entries(last))
      if (k !== "t" && k !== "at") sum[k] = (sum[k] ?? 0) + Number(v);
  }
  return sum;
}

/** Statuses and claims as the store has them once every worker has stopped. */
async function endState({ store, ids }: Run): Promise<{ statuses: Record<string, number>; claims: number }> {
  const statuses: Record<string, number> = {};
  let claims = 0;
  for (const id of ids) {
    const c = await store.getCredential({ connectionId: id, kind: "bot" });
    statuses[c?.status ?? "missing"] = (statuses[c?.status ?? "missing"] ?? 0) + 1;
    if (c?.claimUntilMs !== null) claims++;
  }
  return { statuses, claims };
}

async function check(run: Run, forced: string): Promise<boolean> {
  const files = await readLogs(run.dir);
  const lines = files.flat();
  const of = (t: string) => lines.filter((l) => l.t === t);
  const s = totals(files);
  const { statuses, claims } = await endState(run);
  const { crashes, kills } = run.workers;
  const [stale, rejected, errors] = [of("stale"), of("rejected"), of("error")];
  for (const l of [...rejected, ...errors].slice(0, 10)) console.log(`    ${JSON.stringify(l)}`);
  const results: Result[] = [
    await singleFlight(run.emu, files),
    [
      "2 no caller got a token older than the store's",
      stale.length === 0,
      `${s["probes"]} probes, ${stale.length} stale`,
    ],
    [
      "3 every connection is active at the end",
      statuses["active"] === run.ids.length,
      `${JSON.stringify(statuses)}; ${forced}`,
    ],
    await emissionsPerEpisode(run.warden, run.ids, lines),
    [
      "5 no worker crashed but the killed; no claim held after settling",
      crashes.length === 0 && claims === 0,
      `${kills()} killed, ${crashes.length} crashed ${JSON.stringify(crashes)}, ${claims} claims held`,
    ],
    [
      "callers got a token Slack accepts, or needs_reauth / provider_unavailable",
      rejected.length + errors.length === 0,
      `${s["ok"]} ok, ${s["unavailable"]} provider_unavailable, ${s["needsReauth"]} needs_reauth, ${s["expiredInFlight"]} expired in flight, ${rejected.length} rejected, ${errors.length} other errors`,
    ],
  ];
  for (const [name, pass, detail] of results) console.log(`${pass ? "PASS" : "FAIL"}  ${name}: ${detail}`);
  return results.every(([, pass]) => pass);
}

// ---- main ---------------------------------------------------------------------------------------------

async function main(): Promise<boolean> {
  const replay = `npm run chaos -- --seed ${SEED} --duration ${flags.duration} --store ${flags.store} --connections ${CONNECTIONS} --workers ${WORKERS} --ttl ${flags.ttl} --late ${flags.late}`;
  console.log(`chaos soak, seed ${SEED} (replay: ${replay})`);
  const dir = await mkdtemp(join(tmpdir(), "tw-chaos-"));
  const emu = await startEmulator();
  const { database, drop } = storeUrl(dir);
  const key = generateKey();
  const store = await openStore(database, new AesGcmSealer(parseKeyRing(key)));
  const log = appender(join(dir, "parent.jsonl")); // its forced refreshes count for invariant 1 too
  const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
  const warden = await createWarden({
    store,
    providers: { slack: emu.slack },
    fetch: observeRefreshes(log),
    logger: quiet,
    env: {},
  });
  let workers: Workers | null = null;
  let passed = false;
  try {
    const ids = await importConnections(emu, warden);
    workers = workerPool({ database, key, slack: emu.slack, ids }, dir);
    for (let i = 0; i < WORKERS; i++) await workers.start(i);
    console.log(
      `${flags.store}, ${CONNECTIONS} connections, ${WORKERS} workers, ${flags.duration} s of faults:`,
    );
    await runSchedule(schedule(SEED, DURATION_MS, WORKERS), emu, workers);
    console.log("faults off; settling");
    const run = { emu, warden, store, ids, workers, dir };
    passed = await check(run, await settle(run));
  } finally {
    await workers?.killAll();
    await warden.close();
    await emu.stop();
    await drop();
    if (passed) await rm(dir, { recursive: true, force: true });
    else console.log(`logs kept in ${dir}`);
  }
  console.log(`${passed ? "all invariants hold" : "INVARIANT VIOLATED"}; seed ${SEED}`);
  return passed;
}

process.exitCode = (await main()) ? 0 : 1;
