/**
 * The emulator's clock: a base time source (real, or one injected so a test can share its fake clock
 * with the code under test) plus an offset that `advance()` moves. Tokens, codes, rate-limit windows and
 * event timestamps all read this clock, so a test expires a 12 h token in a microsecond.
 */
export interface EmulatorClock {
  /** Epoch milliseconds. */
  now(): number;
  /** Moves this clock forward; never backward (a backward step would un-expire tokens). */
  advance(seconds: number): void;
}

export function createEmulatorClock(base: () => number = Date.now): EmulatorClock {
  let offsetMs = 0;
  return {
    now: () => base() + offsetMs,
    advance(seconds: number) {
      if (!Number.isFinite(seconds) || seconds < 0) {
        throw new RangeError(`advance(seconds) needs a finite number ≥ 0, got ${String(seconds)}`);
      }
      offsetMs += seconds * 1000;
    },
  };
}
