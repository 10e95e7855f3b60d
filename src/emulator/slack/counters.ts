// What tests assert on ("exactly K refreshes", "each refresh token presented once": DESIGN invariant 1).

/** A snapshot of the emulator's counters. */
export interface EmulatorCounters {
  /** Requests per Web API method, counted on arrival (before faults, rate limits and auth). */
  calls: Record<string, number>;
  /**
   * How often each refresh token reached the refresh-grant logic of `oauth.v2.access`; requests rejected
   * before that (injected fault other than `lost_response` and `fatal_error`, rate limit, bad client) are
   * not counted.
   */
  refreshTokenPresentations: Record<string, number>;
  /** The largest value in `refreshTokenPresentations` (0 when empty). */
  maxPresentations: number;
  /** Successful refreshes per credential key `${appId}:${teamId|enterpriseId}:bot|user:${userId}`. */
  refreshesPerCredential: Record<string, number>;
  /** `invalid_refresh_token` answers sent. */
  invalidRefreshTokenAnswers: number;
  /** Successful refreshes in total. */
  refreshes: number;
}

/** The totals of `EmulatorCounters` without the per-token and per-credential maps: cheap to poll. */
export type EmulatorCounterTotals = Pick<
  EmulatorCounters,
  "calls" | "maxPresentations" | "invalidRefreshTokenAnswers" | "refreshes"
>;

export class CounterSet {
  calls = new Map<string, number>();
  presentations = new Map<string, number>();
  refreshesPerCredential = new Map<string, number>();
  invalidRefreshTokenAnswers = 0;
  refreshes = 0;
  #maxPresentations = 0;

  countCall(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
  }

  countPresentation(refreshToken: string): void {
    const n = (this.presentations.get(refreshToken) ?? 0) + 1;
    this.presentations.set(refreshToken, n);
    this.#maxPresentations = Math.max(this.#maxPresentations, n);
  }

  countRefresh(credentialKey: string): void {
    this.refreshes++;
    this.refreshesPerCredential.set(credentialKey, (this.refreshesPerCredential.get(credentialKey) ?? 0) + 1);
  }

  reset(): void {
    this.calls.clear();
    this.presentations.clear();
    this.refreshesPerCredential.clear();
    this.invalidRefreshTokenAnswers = 0;
    this.refreshes = 0;
    this.#maxPresentations = 0;
  }

  snapshot(): EmulatorCounters {
    return {
      ...this.totals(),
      refreshTokenPresentations: Object.fromEntries(this.presentations),
      refreshesPerCredential: Object.fromEntries(this.refreshesPerCredential),
    };
  }

  totals(): EmulatorCounterTotals {
    return {
      calls: Object.fromEntries(this.calls),
      maxPresentations: this.#maxPresentations,
      invalidRefreshTokenAnswers: this.invalidRefreshTokenAnswers,
      refreshes: this.refreshes,
    };
  }
}
