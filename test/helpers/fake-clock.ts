import type { Clock } from "../../src/core/ports.js";

/** A clock that moves only when told: expiry, leases and backoff without sleeping. */
export class FakeClock implements Clock {
  #nowMs: number;

  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#nowMs = startMs;
  }

  now(): number {
    return this.#nowMs;
  }

  advance(ms: number): number {
    this.#nowMs += ms;
    return this.#nowMs;
  }

  set(ms: number): void {
    this.#nowMs = ms;
  }
}
