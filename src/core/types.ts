import type { Secret } from "./secret.js";

/** `bot` and `user` are Slack's two token sets; other OAuth2 providers have one, `default`. */
export type CredentialKind = "bot" | "user" | "default";
export const CREDENTIAL_KINDS = ["bot", "user", "default"] as const satisfies readonly CredentialKind[];

export type Status = "active" | "refresh_failing" | "needs_reauth";
export const STATUSES = ["active", "refresh_failing", "needs_reauth"] as const satisfies readonly Status[];

/** Reasons that mean the credential is dead until a person reconnects. */
export type DeadReason =
  | "token_revoked"
  | "app_uninstalled"
  | "invalid_refresh_token"
  | "invalid_grant"
  | "refresh_response_lost"
  | "account_inactive"
  | "invalid_auth";

/** Reasons for a failure that will pass on its own; never a reason to give up on a connection. */
export type TransientReason = "rate_limited" | "provider_unavailable";

/** A stable code for the last failure of a credential or provider (DESIGN.md "reason"). */
export type Reason = DeadReason | TransientReason | "provider_misconfigured" | "missing_scope";

export interface CredentialRef {
  connectionId: string;
  kind: CredentialKind;
}

/** What a provider hands back after a grant; what the store persists in one transaction. */
export interface TokenSet {
  accessToken: Secret;
  /** null when the reply carried none: the previous refresh token stays (invariant 2). */
  refreshToken: Secret | null;
  /** `bot`/`user` for Slack, `Bearer` for RFC 6749 providers. */
  tokenType: string;
  expiresAtMs: number | null;
  scopes: string[];
}

/** A credential as the store holds it, decrypted. Never serialised whole: tokens are `Secret`s. */
export interface StoredCredential {
  connectionId: string;
  kind: CredentialKind;
  provider: string;
  accessToken: Secret;
  refreshToken: Secret | null;
  tokenType: string;
  scopes: string[];
  expiresAtMs: number | null;
  /** When the current access token was obtained; refresh margins are a fraction of its lifetime. */
  issuedAtMs: number;
  status: Status;
  reason: Reason | null;
  /** The provider's own error string of the last failure (`token_revoked`, `ECONNRESET`, …), never a secret. */
  lastError: string | null;
  /** Bumped on every token change; fences writes and invalidates caches. */
  version: number;
  /** Consecutive failed refresh attempts since the last success. */
  failureCount: number;
  /** Earliest moment the refresher may try again (backoff, Retry-After); null when none is set. */
  nextAttemptAtMs: number | null;
  /** A refresh was started and its outcome never recorded (crash or lost reply). */
  refreshInDoubt: boolean;
  /** Until when a process holds the right to refresh it; null when nobody does. */
  claimUntilMs: number | null;
  refreshedAtMs: number | null;
  /** Provider facts that are not secret (Slack: bot_user_id, user_id). */
  providerData: Record<string, unknown>;
}

/** What the outside may see of a credential: everything but the tokens. */
export interface CredentialSummary {
  kind: CredentialKind;
  status: Status;
  reason: Reason | null;
  lastError: string | null;
  tokenType: string;
  scopes: string[];
  expiresAtMs: number | null;
  issuedAtMs: number;
  refreshedAtMs: number | null;
  hasRefreshToken: boolean;
  failureCount: number;
  nextAttemptAtMs: number | null;
  version: number;
  providerData: Record<string, unknown>;
}

export interface Connection {
  id: string;
  provider: string;
  /** The worst status of its credentials. */
  status: Status;
  reason: Reason | null;
  metadata: Record<string, unknown>;
  createdAtMs: number;
  updatedAtMs: number;
  credentials: CredentialSummary[];
}

export interface NewCredential {
  kind: CredentialKind;
  tokens: TokenSet;
  providerData: Record<string, unknown>;
  /** When the refresher should refresh it (core/refresh-policy); null: never (no expiry or no refresh token). */
  refreshDueAtMs: number | null;
}

export interface NewConnection {
  id: string;
  provider: string;
  metadata: Record<string, unknown>;
  credentials: NewCredential[];
}

export type EventType =
  | "imported"
  | "reauthorized"
  | "refreshed"
  | "refresh_started"
  | "refresh_failed"
  | "needs_reauth"
  | "recovered"
  | "checked"
  | "revoked"
  | "uninstalled"
  | "deleted"
  | "provider_misconfigured";

/** An append-only record of what happened to a connection. `data` must never hold a secret. */
export interface NewEvent {
  connectionId: string;
  kind: CredentialKind | null;
  type: EventType;
  atMs: number;
  reason?: Reason | null;
  data?: Record<string, unknown>;
}

export interface StoredEvent extends Required<Omit<NewEvent, "data">> {
  id: number;
  data: Record<string, unknown>;
}

export interface ProviderState {
  provider: string;
  status: "ok" | "misconfigured";
  reason: Reason | null;
  lastError: string | null;
  sinceMs: number;
  /**
   * The client credentials the status was recorded with (Provider.clientFingerprint); null or absent
   * when unknown, and then the status holds for every client.
   */
  clientFingerprint?: string | null;
  /** When a refusal was last reported (each report of a `misconfigured` status); null for `ok`. */
  assertedAtMs?: number | null;
}

/** A rate limit on a provider's token endpoint that pauses every instance's refreshes (a 429's Retry-After). */
export interface ProviderPause {
  provider: string;
  /** Epoch ms, on the clock of the instance that got the 429. */
  untilMs: number;
  /** The provider's error (`ratelimited`). */
  error: string;
}

/**
 * How a provider's answer is to be treated (DESIGN.md invariant 4). Expected
 * outcomes are values, never exceptions.
 */
export type Classification =
  | { kind: "refreshable"; error: string }
  | { kind: "dead"; reason: DeadReason; error: string }
  | { kind: "transient"; reason: TransientReason; error: string; retryAfterMs?: number }
  /**
   * Our client credentials are refused. `scope: "credential"`: they work, but this credential's
   * tokens were issued to another client (Slack's `invalid_refresh_token` to another app's token);
   * only that credential is held back, not the provider.
   */
  | { kind: "misconfigured"; reason: "provider_misconfigured"; error: string; scope?: "credential" }
  /** The token is fine but lacks a scope or permission: the caller's problem, not the lifecycle's. */
  | { kind: "forbidden"; reason: "missing_scope"; error: string };

/** Outgoing webhook types (README "Webhooks"); each is written to the outbox with the change it reports. */
export type WebhookType =
  | "connection.needs_reauth"
  | "connection.recovered"
  | "connection.refresh_failed"
  | "provider.misconfigured"
  | "provider.recovered";

/** A webhook waiting for delivery; `payload` is the `data` object of the body, snake_case, never a secret. */
export interface OutboxMessage {
  /** Stable across retries: the receiver's idempotency key. */
  id: string;
  type: WebhookType;
  payload: Record<string, unknown>;
  createdAtMs: number;
  /** Deliveries tried before this one. */
  attempts: number;
}
