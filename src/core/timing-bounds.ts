/**
 * The longest timing or timeout an option may set: a day. Node's timers take at most 2³¹−1 ms (about
 * 24.8 days) and fire a longer delay after 1 ms; timings are also added to (a provider call's timer
 * to its slice width, close()'s default wait to 5 s), so the bound sits far below that.
 */
export const MAX_TIMING_MS = 86_400_000;

/**
 * Whether `value` is a whole number of milliseconds from 1 to MAX_TIMING_MS: a 0, a negative or a NaN
 * interval would fire at once, over and over; a fraction would make a bigint column refuse it.
 */
export function isTimingMs(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 1 && value <= MAX_TIMING_MS;
}
