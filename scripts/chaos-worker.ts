// One worker OS process of the chaos soak (scripts/chaos.ts): a warden with its background refresher,
// and callers that check every token they are given with the emulator. Everything the parent judges
// is appended to a JSON-lines file at once, so a worker killed with SIGKILL loses nothing it saw.
// The parent imports the refresh observer from here too (its own forced refreshes are logged alike).
import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseKeyRing } from "../src/crypto/key-ring.js";
import { AesGcmSealer } from "../src/crypto/seal.js";
import { createWarden, type Warden } from "../src/index.js";
import { openStore } from "../src/store/open-store.js";

export interface WorkerConfig {
  database: string;
  key: string;
  emulatorUrl: string;
  clientId: string;
  clientSecret: string;
  ids: string[];
  logPath: string;
}

export type Log = (record: Record<string, unknown>) => void;

/** Appends synchronously: a line written before a request leaves survives a SIGKILL during it. */
export const appender =
  (path: string): Log =>
  (record) =>
    appendFileSync(path, `${JSON.stringify({ ...record, at: Date.now() })}\n`);

/** The soak's own name for a refresh token: never the token itself in a file. */
export const hashToken = (token: string): string =>
  createHash("sha256").update(token).digest("hex").slice(0, 16);

/** What a refresh answer tells about its token: spent or refused (known), or stopped before it (fault). */
function outcomeOf(status: number, text: string): "ok" | "refused" | "fault" {
  if (status === 429 || status >= 500) return "fault";
  const body = JSON.parse(text) as { ok?: boolean; error?: string };
  if (body.ok === true) return "ok";
  return body.error === "internal_error" || body.error === "ratelimited" ? "fault" : "refused";
}

/**
 * The emulator counts presentations per refresh token but keeps no record of each one's outcome, so
 * every refresh sent is logged with how it ended; "unknown" (a timeout, a dropped connection, or no
 * "done" line because the process was killed) is what invariant 1 allows a second presentation after.
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

const CALLERS = 4;
/** Pause between one caller's calls: four processes on two shared cores must leave room for the rest. */
const CALL_GAP_MS = 40;
/**
 * A peer's commit reaches this process's cache once its change stamp moves: on SQLite at the next turn
 * of the event loop (a 1 ms timer), on PostgreSQL when the NOTIFY arrives. A staleness probe reads the
 * store, waits this long, then asks for a token; one older than what it read is a violation.
 */
const PROBE_GRACE_MS = 100;

async function runWorker(cfg: WorkerConfig): Promise<void> {
  const log = appender(cfg.logPath);
  const stats = { ok: 0, needsReauth: 0, unavailable: 0, expiredInFlight: 0, probes: 0 };
  let stopping = false;

  async function emulator(path: string, init: RequestInit): Promise<Record<string, unknown>> {
    const res = await fetch(`${cfg.emulatorUrl}${path}`, { method: "POST", ...init });
    return (await res.json()) as Record<string, unknown>;
  }
  const authTest = (token: string) =>
    emulator("/api/auth.test", { headers: { authorization: `Bearer ${token}` } });
  const tokenInfo = (token: string) =>
    emulator("/_emulator/tokenInfo", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });

  /** A refused token; one valid when served that expired on the way is the caller's luck, not a fault. */
  async function judgeRefusal(id: string, path: string, token: string, error: unknown, servedAt: number) {
    const info = await tokenInfo(token);
    if (error === "token_expired" && Number(info["expiresAtMs"]) > servedAt) stats.expiredInFlight++;
    else log({ t: "rejected", id, path, error, state: info["state"], revokeReason: info["revokeReason"] });
  }

  const warden: Warden = await createWarden({
    database: cfg.database,
    encryptionKey: cfg.key,
    providers: {
      slack: { clientId: cfg.clientId, clientSecret: cfg.clientSecret, baseUrl: cfg.emulatorUrl },
    },
    fetch: observeRefreshes(log),
    env: {},
    logger: {
      debug: () => {},
      info: () => {},
      warn: (obj, msg) => log({ t: "log", level: "warn", msg, ...obj }),
      error: (obj, msg) => log({ t: "log", level: "error", msg, ...obj }),
    },
  });
  // A store of its own for the staleness probes, as another process would read it.
  const probeStore = await openStore(cfg.database, new AesGcmSealer(parseKeyRing(cfg.key)));
  warden.on("needs_reauth", (e) => log({ t: "needs_reauth", id: e.connectionId, reason: e.reason }));

  async function viaGetToken(id: string): Promise<void> {
    const { accessToken } = await warden.getToken(id, { minTtlSeconds: 5 });
    const servedAt = Date.now();
    const body = await authTest(accessToken);
    if (body["ok"] === true) stats.ok++;
    else await judgeRefusal(id, "getToken", accessToken, body["error"], servedAt);
  }

  async function viaWithToken(id: string): Promise<void> {
    let used = { token: "", servedAt: 0 };
    const body = await warden.withToken(id, (token) => {
      used = { token, servedAt: Date.now() };
      return authTest(token);
    });
    if (body["ok"] === true) stats.ok++;
    else await judgeRefusal(id, "withToken", used.token, body["error"], used.servedAt);
  }

  /** Invariant 2: no caller gets a token older than the one the store held before it asked. */
  async function probe(id: string): Promise<void> {
    const before = await probeStore.getCredential({ connectionId: id, kind: "bot" });
    await sleep(PROBE_GRACE_MS);
    const { accessToken } = await warden.getToken(id, { minTtlSeconds: 5 });
    stats.probes++;
    const had = before?.accessToken.reveal();
    if (had === undefined || accessToken === had) return;
    const [got, stored] = await Promise.all([tokenInfo(accessToken), tokenInfo(had)]);
    const olderByMs = Number(stored["issuedAtMs"]) - Number(got["issuedAtMs"]);
    if (olderByMs > 0) log({ t: "stale", id, olderByMs });
  }

  async function caller(): Promise<void> {
    while (!stopping) {
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
      await sleep(CALL_GAP_MS);
    }
  }

  process.on("message", () => {
    stopping = true; // the parent's only message: stop
  });
  warden.startRefresher();
  const flushStats = setInterval(() => log({ t: "stats", ...stats }), 1_000);
  process.send?.("ready");
  await Promise.all(Array.from({ length: CALLERS }, caller));
  clearInterval(flushStats);
  await warden.close();
  await probeStore.close();
  log({ t: "stats", ...stats });
  process.disconnect?.();
}

const config = process.env["CHAOS_WORKER"];
if (config !== undefined) await runWorker(JSON.parse(config) as WorkerConfig);
