/**
 * The status machine of credentials and connections (DESIGN.md "status") and
 * the episodes that produce `needs_reauth` / `recovered` events and webhooks.
 */
import type { Classification, Reason, Status } from "./types.js";

const SEVERITY: Record<Status, number> = { active: 0, refresh_failing: 1, needs_reauth: 2 };

/**
 * A connection's status is the worst of its credentials': a dead user token
 * makes the connection `needs_reauth` even while its bot token works, because
 * only a person can fix it. No credentials at all counts as `active`.
 *
 * @example
 * worstStatus(["active", "needs_reauth", "refresh_failing"]); // "needs_reauth"
 */
export function worstStatus(statuses: Iterable<Status>): Status {
  let worst: Status = "active";
  for (const s of statuses) if (SEVERITY[s] > SEVERITY[worst]) worst = s;
  return worst;
}

export type EpisodeEvent = "needs_reauth" | "recovered";

/**
 * What a connection-level status change means for the people watching it.
 *
 * - `needs_reauth` only when *entering* it, so one episode emits one event and
 *   one webhook however many credentials or attempts fail inside it.
 * - `recovered` when a connection goes from `needs_reauth` *or* `refresh_failing`
 *   back to `active`. Including `refresh_failing` closes the episode opened by the
 *   `refresh_failed` events, so an alert raised on those can clear; it costs one
 *   event per episode, not per attempt.
 * - `null` for everything else: creation as `active`, deletion (`after` null),
 *   `active` → `refresh_failing` (transient; each attempt already has its
 *   `refresh_failed` event), and staying put.
 *
 * @example
 * episodeTransition("active", "needs_reauth");           // "needs_reauth"
 * episodeTransition("needs_reauth", "needs_reauth");     // null (same episode)
 * episodeTransition("refresh_failing", "active");        // "recovered"
 */
export function episodeTransition(before: Status | null, after: Status | null): EpisodeEvent | null {
  if (after === "needs_reauth" && before !== "needs_reauth") return "needs_reauth";
  if (after === "active" && (before === "needs_reauth" || before === "refresh_failing")) return "recovered";
  return null;
}

/**
 * The stable reason recorded for a classification. `refreshable` has none of its
 * own; on a refresh call it means the provider is misbehaving, so it reads as
 * `provider_unavailable`.
 *
 * @example
 * reasonOf({ kind: "transient", reason: "rate_limited", error: "ratelimited" }); // "rate_limited"
 */
export function reasonOf(c: Classification): Reason {
  return c.kind === "refreshable" ? "provider_unavailable" : c.reason;
}
