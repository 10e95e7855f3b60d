// What tests assert on ("exactly K refreshes", "each refresh token presented once": DESIGN invariant 1).

/** A snapshot of the emulator's counters. */
export interface EmulatorCounters {
  /** Requests per Web API method, counted on arrival (before faults, rate limits and auth). */
  calls: Record<string, number>;
  /**
   * How often each refresh token reached the refresh-grant logic of `oauth.v2.access`; requests rejected
   * before that (injected fault other than `lost_response`, rate limit, bad client) are not counted.
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

export class CounterSet {
  calls = new Map<string, number>();
  presentations = new Map<string, number>();
  refreshesPerCredential = new Map<string, number>();
  invalidRefreshTokenAnswers = 0;
  refreshes = 0;

  countCall(method: string): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
  }

  countPresentation(refreshToken: string): void {
    this.presentations.set(refreshToken, (this.presentations.get(refreshToken) ?? 0) + 1);
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
  }

  snapshot(): EmulatorCounters {
    let maxPresentations = 0;
    for (const n of this.presentations.values()) maxPresentations = Math.max(maxPresentations, n);
    return {
      calls: Object.fromEntries(this.calls),
      refreshTokenPresentations: Object.fromEntries(this.presentations),
      maxPresentations,
      refreshesPerCredential: Object.fromEntries(this.refreshesPerCredential),
      invalidRefreshTokenAnswers: this.invalidRefreshTokenAnswers,
      refreshes: this.refreshes,
    };
  }
}
