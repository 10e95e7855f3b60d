// What every route handler gets: the model, the fault book, the event dispatcher and the clock.
import type { IncomingMessage } from "node:http";
import type { EmulatorClock } from "./clock.js";
import type { CounterSet } from "./counters.js";
import type { EventDispatcher } from "./events.js";
import type { FaultBook } from "./faults.js";
import type { ParsedArgs } from "./http-io.js";
import type { SlackState } from "./state.js";

/** How `GET /oauth/v2/authorize` decides when no person clicks (see control `setAuthorize`). */
export interface AuthorizeSettings {
  /** `consent`: show the Allow / Cancel page; `approve` / `deny`: redirect at once. */
  mode: "consent" | "approve" | "deny";
  /** The workspace the install targets when the URL has no known `team`; null = the first workspace. */
  teamId: string | null;
  /** The installing user; null = the first active user of the workspace. */
  userId: string | null;
  /** Org-wide install (team null, `is_enterprise_install: true`). */
  enterpriseInstall: boolean;
}

export interface PendingConsent {
  appId: string;
  clientId: string;
  redirectUri: string;
  redirectUriSent: string | null;
  state: string | null;
  teamId: string;
  userId: string;
  enterpriseInstall: boolean;
  botScopes: string[];
  userScopes: string[];
  codeChallenge: string | null;
}

export interface EmulatorContext {
  state: SlackState;
  faults: FaultBook;
  events: EventDispatcher;
  counters: CounterSet;
  clock: EmulatorClock;
  authorize: AuthorizeSettings;
  pendingConsents: Map<string, PendingConsent>;
}

/** A Web API answer, built before it is written so `lost_response` can commit and then drop it. */
export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface ApiCall {
  ctx: EmulatorContext;
  req: IncomingMessage;
  method: string;
  parsed: ParsedArgs;
}

export function okReply(body: Record<string, unknown>, headers?: Record<string, string>): Reply {
  return headers === undefined ? { status: 200, body } : { status: 200, body, headers };
}

/** Slack errors are HTTP 200 with `ok: false` (§4.5); only rate limits and infrastructure differ. */
export function errorReply(
  error: string,
  extra: Record<string, unknown> = {},
  headers?: Record<string, string>,
): Reply {
  const body = { ok: false, error, ...extra };
  return headers === undefined ? { status: 200, body } : { status: 200, body, headers };
}
