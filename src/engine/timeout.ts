/**
 * Runs `fn` with a signal that aborts with a `TimeoutError` after `ms`, and
 * clears the timer as soon as `fn` settles. `AbortSignal.timeout()` cannot be
 * cleared: each call leaves a timer alive for its full duration, and in a
 * refresh storm (10 s timeouts, thousands of calls a second) those timers cost
 * a third of a provider call's CPU (bench/engine.bench.ts).
 */
export async function withTimeout<T>(ms: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
  }, ms);
  timer.unref();
  try {
    return await fn(controller.signal);
  } finally {
    clearTimeout(timer);
  }
}
