/**
 * What a verified Slack event means for our connections (slack-api.md §6.3):
 * `app_uninstalled` kills every credential of the installation; `tokens_revoked`
 * kills the credentials whose bot user ids (`tokens.bot`) or user ids
 * (`tokens.oauth`) it names.
 */
import { TokenwardenError } from "../core/errors.js";
import type { CredentialKind } from "../core/types.js";
import type { Warden } from "../engine/warden.js";

/** The parts of an event envelope (§6.2) this receiver reads. */
export interface SlackEnvelope {
  type?: unknown;
  team_id?: unknown;
  enterprise_id?: unknown;
  context_enterprise_id?: unknown;
  event_id?: unknown;
  authorizations?: unknown;
  event?: { type?: unknown; tokens?: { bot?: unknown; oauth?: unknown } } | unknown;
}

const asStrings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

/** Connection ids an event may be about: the workspace, then the org (org-wide installs). */
export function candidateIds(envelope: SlackEnvelope): string[] {
  const ids: string[] = [];
  if (typeof envelope.team_id === "string") ids.push(envelope.team_id);
  if (Array.isArray(envelope.authorizations)) {
    for (const a of envelope.authorizations as Array<Record<string, unknown>>) {
      if (typeof a?.["enterprise_id"] === "string" && a["is_enterprise_install"] === true)
        ids.push(a["enterprise_id"]);
      if (typeof a?.["team_id"] === "string") ids.push(a["team_id"]);
    }
  }
  for (const v of [envelope.enterprise_id, envelope.context_enterprise_id])
    if (typeof v === "string") ids.push(v);
  return [...new Set(ids)];
}

export type EventOutcome =
  | { handled: false; why: string }
  | {
      handled: true;
      connectionId: string;
      kinds: CredentialKind[] | "all";
      reason: "app_uninstalled" | "token_revoked";
    };

async function findConnection(warden: Warden, ids: string[]) {
  for (const id of ids) {
    try {
      return await warden.connections.get(id);
    } catch (error) {
      // Only "no such connection" (or an id no connection could have) means not ours. A store that
      // failed must fail the request, so its event id is forgotten and Slack's retry acts on it.
      const code = error instanceof TokenwardenError ? error.code : null;
      if (code !== "not_found" && code !== "invalid_input") throw error;
    }
  }
  return null;
}

type EventBody = { type?: unknown; tokens?: { bot?: unknown; oauth?: unknown } };
const eventOf = (envelope: SlackEnvelope): EventBody =>
  (typeof envelope.event === "object" && envelope.event !== null ? envelope.event : {}) as EventBody;

/** Whether an event_callback is one this receiver acts on (the rest are acknowledged and ignored). */
export function actsOn(envelope: SlackEnvelope): boolean {
  const type = eventOf(envelope).type;
  return type === "app_uninstalled" || type === "tokens_revoked";
}

/** Acts on one event_callback; never throws for an unknown team or event type (Slack would retry). */
export async function applySlackEvent(warden: Warden, envelope: SlackEnvelope): Promise<EventOutcome> {
  const event = eventOf(envelope);
  if (!actsOn(envelope)) return { handled: false, why: "event type not acted on" };
  const connection = await findConnection(warden, candidateIds(envelope));
  if (connection === null || connection.provider !== "slack")
    return { handled: false, why: "unknown installation" };
  if (event.type === "app_uninstalled") {
    await warden.markNeedsReauth(connection.id, "all", "app_uninstalled");
    return { handled: true, connectionId: connection.id, kinds: "all", reason: "app_uninstalled" };
  }
  const bots = new Set(asStrings(event.tokens?.bot));
  const users = new Set(asStrings(event.tokens?.oauth));
  const kinds = connection.credentials
    .filter((c) => {
      if (c.kind === "bot")
        return bots.has(String(c.providerData["bot_user_id"] ?? connection.metadata["bot_user_id"]));
      if (c.kind === "user") return users.has(String(c.providerData["user_id"] ?? ""));
      return false;
    })
    .map((c) => c.kind);
  if (kinds.length === 0) return { handled: false, why: "no credential matches the revoked ids" };
  await warden.markNeedsReauth(connection.id, kinds, "token_revoked");
  return { handled: true, connectionId: connection.id, kinds, reason: "token_revoked" };
}
