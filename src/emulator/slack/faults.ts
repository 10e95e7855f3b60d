// Injected failures, rate limits and latency: the knobs of slack-api.md §9 "forced errors per method".

export type FaultKind =
  | "error"
  | "fatal_error"
  | "http_500"
  | "hang"
  | "internal_error"
  | "lost_response"
  | "ratelimited";

export interface FaultSpec {
  kind: FaultKind;
  /** How many matching requests it affects; then it is used up. */
  times: number;
  /** `hang`: hold the request this long, then answer normally; absent = until the client gives up. */
  hangMs?: number;
  /** `ratelimited`: the `Retry-After` value (seconds); default 1. */
  retryAfterSeconds?: number;
  /** `error`: the code answered as HTTP 200 `{"ok":false,"error":…}`, the call not run. */
  error?: string;
}

/** What an `error` fault may answer: a code as Slack writes them. */
const ERROR_CODE = /^[a-z0-9_]{1,64}$/;

export const FAULT_KINDS: readonly FaultKind[] = [
  "error",
  "fatal_error",
  "http_500",
  "hang",
  "internal_error",
  "lost_response",
  "ratelimited",
];

/** Per-method queues of faults, fixed-window rate limits on the emulator clock, and latency. */
export class FaultBook {
  readonly #faults = new Map<string, FaultSpec[]>();
  readonly #limits = new Map<string, { perMinute: number; windowStartMs: number; count: number }>();
  readonly #latencyByMethod = new Map<string, number>();
  latencyMs: number;

  constructor(latencyMs: number) {
    this.latencyMs = latencyMs;
  }

  add(method: string, spec: FaultSpec): void {
    if (!FAULT_KINDS.includes(spec.kind)) throw new Error(`unknown fault kind ${String(spec.kind)}`);
    if (!Number.isInteger(spec.times) || spec.times < 1)
      throw new Error("fault times must be an integer ≥ 1");
    if (spec.kind === "error" && !ERROR_CODE.test(spec.error ?? ""))
      throw new Error("an error fault needs error: a code of a-z, 0-9 and _");
    const queue = this.#faults.get(method) ?? [];
    queue.push({ ...spec });
    this.#faults.set(method, queue);
  }

  /** Takes one use of the next fault queued for `method` (or for `*`, any method). */
  take(method: string): FaultSpec | null {
    for (const key of [method, "*"]) {
      const queue = this.#faults.get(key);
      const head = queue?.[0];
      if (queue === undefined || head === undefined) continue;
      head.times--;
      if (head.times === 0) queue.shift();
      return head;
    }
    return null;
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  setRateLimit(method: string, perMinute: number | null): void {
    if (perMinute === null) {
      this.#limits.delete(method);
      return;
    }
    if (!Number.isInteger(perMinute) || perMinute < 0) throw new Error("perMinute must be an integer ≥ 0");
    this.#limits.set(method, { perMinute, windowStartMs: Number.NEGATIVE_INFINITY, count: 0 });
  }

  /**
   * Counts a call against the method's per-minute window (§5: windows are per minute). Keyed per method
   * for the whole emulator, not per workspace and app as Slack does: simpler to reason about in tests.
   * Returns the Retry-After seconds when over the limit.
   */
  checkRateLimit(method: string, nowMs: number): number | null {
    const limit = this.#limits.get(method);
    if (limit === undefined) return null;
    if (nowMs >= limit.windowStartMs + 60_000) {
      limit.windowStartMs = nowMs;
      limit.count = 0;
    }
    limit.count++;
    if (limit.count <= limit.perMinute) return null;
    return Math.max(1, Math.ceil((limit.windowStartMs + 60_000 - nowMs) / 1000));
  }

  setLatency(ms: number, method?: string): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error("latency must be a number ≥ 0");
    if (method === undefined) this.latencyMs = ms;
    else this.#latencyByMethod.set(method, ms);
  }

  latencyFor(method: string): number {
    return this.#latencyByMethod.get(method) ?? this.latencyMs;
  }
}
