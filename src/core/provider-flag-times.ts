/**
 * A flag of other client credentials that nobody has reported again for this long is stale. A process
 * whose credentials are refused reports again at every probe, and at its refresher's sync once the
 * flag's last report is a minute old, so five minutes of silence means none is left running; the
 * margin also absorbs clocks a few minutes apart (a report is dated by its sender's clock, its age
 * judged by the reader's).
 */
export const STALE_FLAG_MS = 5 * 60_000;
