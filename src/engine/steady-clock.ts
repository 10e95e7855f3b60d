import type { Clock } from "../core/ports.js";

/**
 * Milliseconds that never run backwards, for deciding within this process when a probe is next due,
 * when a pause ends and which of two moments came first. The wall clock can step back (an NTP step at
 * boot, a VM resumed from a snapshot, an operator's `date -s`): a schedule kept in wall time would then
 * hold a process back for as long as the step, and an ordering would call a request sent after a
 * refusal one sent before it. Values compare only with each other, never with stored instants.
 *
 * The clock's own `elapsedMs` when it has one (the system clock: the host's monotonic clock). Else read
 * off `now()`, as a test's fake clock drives it: a backward step counts as no time passing, and time
 * counts on from the next reading (time that passes between the step and that reading is lost, which a
 * monotonic source does not lose). A forward step counts in full: a probe then comes early, harmlessly.
 */
export function steadyClock(clock: Clock): () => number {
  if (clock.elapsedMs !== undefined) return clock.elapsedMs.bind(clock);
  let lastWallMs = clock.now();
  let steadyMs = lastWallMs;
  return () => {
    const wallMs = clock.now();
    if (wallMs > lastWallMs) steadyMs += wallMs - lastWallMs;
    lastWallMs = wallMs;
    return steadyMs;
  };
}
