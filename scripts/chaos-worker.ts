// One worker OS process of the chaos soak (scripts/chaos.ts): a warden with its background refresher,
// and callers that check every token they are given with the emulator. What the parent judges is
// appended to a JSON-lines file at once, so a worker killed with SIGKILL loses nothing it saw. The
// parent imports the refresh observer too: its own refreshes after settling are logged alike.
import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseKeyRing } from "../src/crypto/key-ring.js";
import { AesGcmSealer } from "../src/crypto/seal.js";
import { createWarden } from "../src/index.js";
import { openStore } from "../src/store/open-store.js";

export interface WorkerConfig {
  database: string;
  key: string;
  slack: { baseUrl: string; clientId: string; clientSecret: string };
  ids: string[];
  logPath: string;
}

export type Log = (record: Record<string, unknown>) => void;

/** Appends synchronously: a line written before a request leaves survives a SIGKILL during it. */
export const appender =
  (path: string): Log =>
  (record) =>
    appendFileSync(path, `${JSON.stringify({ ...record, at: Date.now() })}\n`);

/** The soak's name for a refresh token: never the token itself in a file. */
export const hashToken = (token: string): string =>
  createHash("sha256").update(token).digest("hex").slice(0, 16);

/** What an answer says of the token: spent or refused (known), or stopped before the refresh logic. */
function outcomeOf(status: number, text: string): "ok" | "refused" | "fault" {
  if (status === 429 || status >= 500) return "fault";
  const body = JSON.parse(text) as { ok?: boolean; error?: string };
  if (body.ok === true) return "ok";
  return body.error === "internal_error" || body.error === "ratelimited" ? "fault" : "refused";
}

/**
 * The emulator counts presentations per refresh token but records no outcome per presentation, so
 * every refresh sent is logged with how it ended. "unknown" (a timeout, a dropped connection, or no
 * "done" line at all: the process was killed) is what allows a second presentation (invariant 1).
 */
export const observeRefreshes =
  (log: Log): typeof fetch =>
  async (input, init) => {
    if (!String(input).endsWith("/api/oauth.v2.access")) return fetch(input, init);
    const h = hashToken(new URLSearchParams(String(init?.body)).get("refresh_token") ?? "");
    log({ t: "send", h });
    try {
      const res = await fetch(input, init);
      const text = await res.text();
      log({ t: "done", h, outcome: outcomeOf(res.status, text) });
      return new Response(text, { status: res.status, headers: res.headers });
    } catch (error) {
      log({ t: "done", h, outcome: "unknown" });
      throw error;
    }
  };

/** Four callers, 40 ms apart: four such processes on two shared cores must leave room for the rest. */
const CALLERS = 4;
const CALL_GAP_MS = 40;
/**
 * A peer's commit reaches this process's cache when its change stamp moves: on SQLite at the next
 * turn of the event loop, on PostgreSQL when the NOTIFY arrives (a documented moment). A probe reads
 * the store, waits this long, then asks; a token older than the one it read is a violation.
 */
const PROBE_GRACE_MS = 100;

type Answer = Record<string, unknown>;

async function runWorker(cfg: WorkerConfig): Promise<void> {
  const log = appender(cfg.logPath);
  const stats = { ok: 0, needsReauth: 0, unavailable: 0, expiredInFlight: 0, probes: 0 };
  const call = async (path: string, init: RequestInit): Promise<Answer> =>
    (await fetch(`${cfg.slack.baseUrl}${path}`, { method: "POST", ...init })).json() as Promise<Answer>;
  const authTest = (token: string) =>
    call("/api/auth.test", { headers: { authorization: `Bearer ${token}` } });
  const tokenInfo = (token: string) =>
    call("/_emulator/tokenInfo", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });

  const warden = await createWarden({
    database: cfg.database,
    encryptionKey: cfg.key,
    providers: { slack: cfg.slack },
    fetch: observeRefreshes(log),
    env: {},
    logger: {
      debug: () => {},
      info: () => {},
      warn: (obj, msg) => log({ t: "log", level: "warn", msg, ...obj }),
      error: (obj, msg) => log({ t: "log", level: "error", msg, ...obj }),
    },
  });
  warden.on("needs_reauth", (e) => log({ t: "needs_reauth", id: e.connectionId, reason: e.reason }));
  const probeStore = await openStore(cfg.database, new AesGcmSealer(parseKeyRing(cfg.key))); // as a peer reads

  /** Slack's answer about a token; one valid when served that expired on the way is the caller's luck. */
  async function judge(id: string, path: string, used: { token: string; servedAt: number }, body: Answer) {
    if (body["ok"] === true) return void stats.ok++;
    const info = await tokenInfo(used.token);
    if (body["error"] === "token_expired" && Number(info["expiresAtMs"]) > used.servedAt)
      stats.expiredInFlight++;
    else
      log({ t: "rejected", id, path, error: body["error"], state: info["state"], why: info["revokeReason"] });
  }

  async function viaGetToken(id: string): Promise<void> {
    const { accessToken: token } = await warden.getToken(id, { minTtlSeconds: 5 });
    const used = { token, servedAt: Date.now() };
    await judge(id, "getToken", used, await authTest(token));
  }

  /** withToken refreshes and retries on token_expired itself: what it hands back must be accepted. */
  async function viaWithToken(id: string): Promise<void> {
    let used = { token: "", servedAt: 0 };
    const body = await warden.withToken(id, (token) => {
      used = { token, servedAt: Date.now() };
      return authTest(token);
    });
    await judge(id, "withToken", used, body);
  }

  /** Invariant 2: no caller gets a token older than the one the store held before it asked. */
  async function probe(id: string): Promise<void> {
    const had = (await probeStore.getCredential({ connectionId: id, kind: "bot" }))?.accessToken.reveal();
    await sleep(PROBE_GRACE_MS);
    const { accessToken } = await warden.getToken(id, { minTtlSeconds: 5 });
    stats.probes++;
    if (had === undefined || accessToken === had) return;
    const [got, stored] = await Promise.all([tokenInfo(accessToken), tokenInfo(had)]);
    const olderByMs = Number(stored["issuedAtMs"]) - Number(got["issuedAtMs"]);
    if (olderByMs > 0) log({ t: "stale", id, olderByMs });
  }

  let stopping = false;
  process.on("message", () => {
    stopping = true; // the parent's only message
  });
  async function caller(): Promise<void> {
    for (; !stopping; await sleep(CALL_GAP_MS)) {
      const id = cfg.ids[Math.floor(Math.random() * cfg.ids.length)] as string;
      const r = Math.random();
      try {
        await (r < 0.1 ? probe(id) : r < 0.55 ? viaGetToken(id) : viaWithToken(id));
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === "needs_reauth") stats.needsReauth++;
        else if (code === "provider_unavailable") stats.unavailable++;
        else log({ t: "error", id, code, message: String(error) });
      }
    }
  }

  warden.startRefresher();
  const flushStats = setInterval(() => log({ t: "stats", ...stats }), 1_000);
  process.send?.("ready");
  await Promise.all(Array.from({ length: CALLERS }, caller));
  clearInterval(flushStats);
  await warden.close(); // waits for refreshes in flight to store their outcome
  await probeStore.close();
  log({ t: "stats", ...stats });
  process.disconnect?.();
}

const config = process.env["CHAOS_WORKER"];
if (config !== undefined) await runWorker(JSON.parse(config) as WorkerConfig);
