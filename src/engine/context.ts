import { DEFAULT_BACKOFF } from "../core/backoff.js";
import { TokenwardenError } from "../core/errors.js";
import type { Clock, Logger, Provider, Random, Store } from "../core/ports.js";
import { DEFAULT_JITTER_FRACTION, type RefreshPolicy } from "../core/refresh-policy.js";
import { isTimingMs, MAX_TIMING_MS } from "../core/timing-bounds.js";
import type { ClaimKeeper } from "./claim-keeper.js";
import type { CompletionBatcher } from "./completion-batcher.js";
import type { TokenCache } from "./token-cache.js";
import type { WardenEvents } from "./warden-events.js";

/** Tunables of the refresh machinery; all durations in ms. */
export interface EngineTimings {
  /** How long a refresh claim holds before another process may take it over; renewed while alive. */
  leaseMs: number;
  /** Abort a provider call after this long (its outcome is then unknown: invariant 1's exception). */
  providerTimeoutMs: number;
  /** How long a caller waits for another process's refresh before giving up (never spending the token itself). */
  waitTimeoutMs: number;
  /** How often a waiter re-reads the store. */
  pollMs: number;
  /**
   * How often a process re-reads the shared provider flags (at its refresher's passes), and, while its
   * own client credentials are refused, reports that (with or without a refresher).
   */
  providerSyncMs: number;
  /** Spread of the background refresh time, earlier only, as a fraction of the refresh margin. */
  jitterFraction: number;
  /** Transient failure backoff. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_TIMINGS: EngineTimings = {
  // Longer than a provider call can run plus the first backoff: a live holder renews its lease, so
  // the length matters only once a holder died mid-call. Taking that claim over sooner re-sent the
  // refresh token while the dead holder's request could still reach Slack after the re-send, minting a
  // newer sibling that left the stored refresh token superseded (found by a chaos soak). A live
  // holder that timed out retries no sooner either (its backoff starts at 10 s).
  leaseMs: 30_000,
  providerTimeoutMs: 20_000,
  // A waiter behind a holder that died waits out the lease, then refreshes itself.
  waitTimeoutMs: 55_000,
  pollMs: 25,
  // A few seconds' lag on another process's flag is harmless; a store read per pass is not.
  providerSyncMs: 5_000,
  jitterFraction: DEFAULT_JITTER_FRACTION,
  backoffBaseMs: DEFAULT_BACKOFF.baseMs,
  backoffMaxMs: DEFAULT_BACKOFF.maxMs,
};

/**
 * The defaults overridden by `given` (an undefined value keeps the default), checked: each duration a
 * whole number of ms from 1 to MAX_TIMING_MS (a 0, a negative or a NaN interval would run a store round
 * trip every millisecond, a fraction would make a lease's bigint refuse), the jitter a fraction in [0, 1).
 * Throws `config_invalid` naming the timing.
 */
export function resolveTimings(given: Partial<EngineTimings> = {}): EngineTimings {
  const timings: EngineTimings = { ...DEFAULT_TIMINGS };
  for (const [key, value] of Object.entries(given) as Array<[keyof EngineTimings, number | undefined]>) {
    if (value !== undefined) timings[key] = value;
  }
  for (const [key, value] of Object.entries(timings)) {
    if (key === "jitterFraction") {
      if (!(Number.isFinite(value) && value >= 0 && value < 1))
        throw new TokenwardenError(
          "config_invalid",
          "timings.jitterFraction must be a number from 0 to below 1",
        );
    } else if (!isTimingMs(value)) {
      throw new TokenwardenError(
        "config_invalid",
        `timings.${key} must be a whole number of milliseconds from 1 to ${MAX_TIMING_MS} (a day)`,
      );
    }
  }
  if (timings.backoffMaxMs < timings.backoffBaseMs)
    throw new TokenwardenError(
      "config_invalid",
      "timings.backoffMaxMs must not be below timings.backoffBaseMs",
    );
  return timings;
}

/** Everything the engine's functions need, passed explicitly (no module singletons). */
export interface EngineContext {
  store: Store;
  providers: ReadonlyMap<string, Provider>;
  clock: Clock;
  /**
   * This process's clock for its own schedules and orderings (probe spacing, pauses, "sent after the
   * refusal"): the injected clock with backward steps taken out (steady-clock.ts). Stored instants stay
   * on `clock`. Every `…SteadyMs` value and the maps' instants below are on this clock.
   */
  steadyNow: () => number;
  /** `clock.now()` and a lease's length for taking, renewing or judging a lease (DatabaseAlignedClock.lease). */
  leaseWindow: () => { nowMs: number; leaseMs: number };
  random: Random;
  logger: Logger;
  policy: RefreshPolicy;
  timings: EngineTimings;
  /** Identifies this process in refresh claims. */
  owner: string;
  events: WardenEvents;
  cache: TokenCache;
  /** Renews the claims held from their taking until their outcome is stored, so a live holder's lease never lapses. */
  claims: ClaimKeeper;
  /** Where finished refreshes are persisted: group-committed, one store write at a time. */
  completions: CompletionBatcher;
  /**
   * Providers known to reject our client credentials (mirrors the store's provider states), each with
   * since when (steady) this process knows of the refusal holding it back (its own refusal's arrival,
   * or its sync's reading of the shared flag): an answer to a request sent by then proves nothing.
   */
  flaggedProviders: Map<string, number>;
  /** Whether provider flags are read from and written to the store (WardenOptions.providerState). */
  sharedProviderState: boolean;
  /**
   * Providers whose client credentials were refused to this process itself: held back until its own
   * probe succeeds, whatever the shared state says meanwhile (another process may overwrite or lift a
   * flag that names other credentials).
   */
  refusedHere: Map<string, Refusal>;
  /** Per flagged provider, when this process may next let a caller's refresh through as a probe. */
  providerProbeAtMs: Map<string, number>;
  /** Per flagged provider, when the refresher (any pass of this process's) may next take a probe. */
  refresherProbeAtMs: Map<string, number>;
  /** Per provider, when (steady clock) this process last ended the backoffs of an outage of it. */
  outageEndedAtMs: Map<string, number>;
  /**
   * Per provider rate limiting our refreshes (a 429 on the token endpoint, which Slack limits per
   * app): until when, and the provider's error. Refreshes on demand and in the background alike wait.
   * `sharedUntilMs` (wall) is the latest end the store is known to hold, this process's or adopted.
   */
  providerPausedUntil: Map<string, { untilSteadyMs: number; error: string; sharedUntilMs: number }>;
  reconnectUrl(connectionId: string, provider: string): string | null;
  /** Told of every refresh grant sent to a provider, with its outcome and latency (the server's metrics). */
  onRefresh?: ((observation: RefreshObservation) => void) | undefined;
}

/** Every outcome a refresh grant is reported with (metrics export each from the start, at 0). */
export const REFRESH_OUTCOMES = [
  "refreshed",
  "refreshable",
  "dead",
  "transient",
  "misconfigured",
  "forbidden",
] as const;
export type RefreshOutcomeLabel = (typeof REFRESH_OUTCOMES)[number];

/** One refresh grant as `onRefresh` sees it: never a token. */
export interface RefreshObservation {
  provider: string;
  kind: string;
  /** `refreshed`, or the classification of the failure. */
  outcome: RefreshOutcomeLabel;
  durationMs: number;
}

/** This process's own refusal of a provider's client credentials (EngineContext.refusedHere). */
export interface Refusal {
  /** Whether it was logged and emitted (once per refusal, per process). */
  announced: boolean;
  /** The record of the latest refusal in the store, which the next waits for (flagProvider). */
  recording: Promise<void>;
}
