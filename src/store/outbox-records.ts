/**
 * Which changes become webhooks, and what they say: pure functions both
 * adapters call inside the transaction that makes the change, so the outbox
 * row commits (or not) with it (DESIGN.md invariant 6). Payloads are the
 * wire format (snake_case) and never hold a secret.
 */
import { TokenwardenError } from "../core/errors.js";
import type { NewEvent, OutboxMessage, ProviderState, WebhookType } from "../core/types.js";

const WEBHOOK_OF_EVENT: Partial<Record<NewEvent["type"], WebhookType>> = {
  needs_reauth: "connection.needs_reauth",
  recovered: "connection.recovered",
  refresh_failed: "connection.refresh_failed",
};

/** A row to insert: the message plus when its first delivery is due (at once). */
export interface NewOutboxRow {
  message: OutboxMessage;
  nextAttemptAtMs: number;
}

/** The webhook an event causes, if any; `provider` is the connection's. */
export function outboxRowOfEvent(event: NewEvent, provider: string, id: string): NewOutboxRow | null {
  const type = WEBHOOK_OF_EVENT[event.type];
  if (type === undefined) return null;
  const data = event.data ?? {};
  const payload: Record<string, unknown> = {
    connection_id: event.connectionId,
    provider,
    kind: event.kind,
    reason: event.reason ?? null,
    at: new Date(event.atMs).toISOString(),
  };
  if (type === "connection.refresh_failed") {
    const attempt = typeof data["attempt"] === "number" ? data["attempt"] : null;
    // A provider outage fails every connection's refresh again and again: announce the 1st, 2nd,
    // 4th, 8th… failure in a row, not each one (the event log keeps them all). A refusal that kills
    // the credential carries no attempt number and is always announced.
    if (attempt !== null && !isPowerOfTwo(attempt)) return null;
    payload["error"] = typeof data["error"] === "string" ? data["error"] : null;
    const next = data["nextAttemptAtMs"];
    payload["retry_at"] = typeof next === "number" ? new Date(next).toISOString() : null;
    payload["attempt"] = attempt;
  }
  return {
    message: { id, type, payload, createdAtMs: event.atMs, attempts: 0 },
    nextAttemptAtMs: event.atMs,
  };
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * The webhook of a provider state upsert over `before` (null: never seen, so `ok`): a change to
 * misconfigured raises the flag, a change back to ok lifts it; no change announces nothing.
 */
export function outboxRowOfProviderState(
  state: ProviderState,
  before: Pick<ProviderState, "status" | "sinceMs"> | null,
  id: string,
): NewOutboxRow | null {
  if ((before?.status ?? "ok") === state.status) return null;
  if (state.status === "ok") {
    return before === null
      ? null
      : outboxRowOfProviderLift(state.provider, before.sinceMs, state.sinceMs, id);
  }
  return {
    message: {
      id,
      type: "provider.misconfigured",
      payload: {
        provider: state.provider,
        reason: state.reason,
        error: state.lastError,
        at: new Date(state.sinceMs).toISOString(),
      },
      createdAtMs: state.sinceMs,
      attempts: 0,
    },
    nextAttemptAtMs: state.sinceMs,
  };
}

/**
 * The all-clear of a lifted flag: written by the transaction whose update ended the episode, which a
 * concurrent lift finds already `ok`, so each episode has one. `since` is the flag's `since_ms`, when
 * it was raised (or came to name the credentials it named last): what a receiver's alert began with.
 */
export function outboxRowOfProviderLift(
  provider: string,
  flaggedSinceMs: number,
  atMs: number,
  id: string,
): NewOutboxRow {
  return {
    message: {
      id,
      type: "provider.recovered",
      payload: {
        provider,
        since: new Date(flaggedSinceMs).toISOString(),
        at: new Date(atMs).toISOString(),
      },
      createdAtMs: atMs,
      attempts: 0,
    },
    nextAttemptAtMs: atMs,
  };
}

export function outboxMessageFromRow(row: Record<string, unknown>): OutboxMessage {
  const payload = row["payload"];
  return {
    id: String(row["id"]),
    type: row["type"] as WebhookType,
    payload: (typeof payload === "string" ? JSON.parse(payload) : payload) as Record<string, unknown>,
    createdAtMs: Number(row["created_at_ms"]),
    attempts: Number(row["attempts"]),
  };
}

/** Scope and key of single-use marks are user-visible strings: bounded, so a caller cannot bloat the table. */
export function checkMark(scope: string, key: string): void {
  if (scope.length === 0 || scope.length > 64 || key.length === 0 || key.length > 512) {
    throw new TokenwardenError("invalid_input", "mark scope must be 1-64 and key 1-512 characters");
  }
}
