import { setMaxListeners } from "node:events";

/** Calls that start within this fraction of their timeout share one deadline (at most a second apart). */
const SLICE_FRACTION = 100;
const MAX_SLICE_MS = 1_000;

interface Slice {
  controller: AbortController;
  timer: NodeJS.Timeout;
  users: number;
  /** Calls starting before then join this slice; its deadline is then at least their full timeout away. */
  openUntilMs: number;
}

/** The open slice per timeout length; a slice leaves once its last call settles. */
const open = new Map<number, Slice>();

/**
 * Runs `fn` with a signal that aborts with a `TimeoutError` no sooner than
 * `ms` after the call and at most `ms`/100 (a second at most) later, and
 * clears the timer once `fn` and every call sharing it have settled.
 *
 * Calls starting within that hundredth share one AbortController and one
 * timer. A controller is an EventTarget: with its timer it cost more than a
 * seal per provider call in a refresh storm (bench/engine.bench.ts), where
 * thousands of calls a second each need a deadline and almost none meet it.
 * `AbortSignal.timeout()` is no cheaper: its timer cannot be cleared and stays
 * alive for the full timeout.
 */
export async function withTimeout<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const now = performance.now();
  let slice = open.get(ms);
  if (slice === undefined || now >= slice.openUntilMs) {
    slice = startSlice(ms, now);
    open.set(ms, slice);
  }
  slice.users++;
  try {
    return await fn(slice.controller.signal);
  } finally {
    if (--slice.users === 0) {
      clearTimeout(slice.timer);
      if (open.get(ms) === slice) open.delete(ms);
    }
  }
}

function startSlice(ms: number, now: number): Slice {
  const width = Math.min(MAX_SLICE_MS, Math.ceil(ms / SLICE_FRACTION));
  const controller = new AbortController();
  // Every call of the slice listens on this one signal (undici adds a listener per request).
  setMaxListeners(0, controller.signal);
  const timer = setTimeout(() => {
    controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
  }, ms + width);
  timer.unref();
  return { controller, timer, users: 0, openUntilMs: now + width };
}

/**
 * Whether `p` settles within `ms`: true if it does (a rejection passes through), false once `ms`
 * have passed first. `p` keeps running either way; the timer is cleared.
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
