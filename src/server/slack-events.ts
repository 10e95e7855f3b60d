/**
 * What a verified Slack event means for our connections (slack-api.md §6.3):
 * `app_uninstalled` kills every credential of the installation; `tokens_revoked`
 * kills the credentials whose bot user ids (`tokens.bot`) or user ids
 * (`tokens.oauth`) it names. The installation's connections are the one stored
 * under its id and every one whose metadata names it (imported under an id of
 * its own, or a generated `conn_…`).
 */
import { TokenwardenError } from "../core/errors.js";
import type { Store } from "../core/ports.js";
import type { Connection, CredentialKind } from "../core/types.js";
import type { Warden } from "../engine/warden.js";

/** The parts of an event envelope (§6.2) this receiver reads. */
export interface SlackEnvelope {
  type?: unknown;
  team_id?: unknown;
  enterprise_id?: unknown;
  context_enterprise_id?: unknown;
  event_id?: unknown;
  /** When the event happened, in epoch seconds (Slack's clock). */
  event_time?: unknown;
  authorizations?: unknown;
  event?: { type?: unknown; tokens?: { bot?: unknown; oauth?: unknown } } | unknown;
}

const asStrings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

/** An id an event may name its installation by, and as what: a workspace, an org, or both. */
export interface InstallationCandidate {
  id: string;
  team: boolean;
  enterprise: boolean;
}

/** Installations an event may be about, most specific first: the workspace, then the org (org-wide installs). */
export function candidateInstallations(envelope: SlackEnvelope): InstallationCandidate[] {
  const found = new Map<string, InstallationCandidate>();
  const add = (id: unknown, as: "team" | "enterprise") => {
    if (typeof id !== "string" || id === "") return;
    const c = found.get(id) ?? { id, team: false, enterprise: false };
    c[as] = true;
    found.set(id, c);
  };
  add(envelope.team_id, "team");
  const authorizations = Array.isArray(envelope.authorizations)
    ? (envelope.authorizations as Array<Record<string, unknown>>)
    : [];
  for (const a of authorizations) {
    if (a?.["is_enterprise_install"] === true) add(a["enterprise_id"], "enterprise");
    add(a?.["team_id"], "team");
  }
  // The envelope's own enterprise ids name the org of a workspace-level install too: an event about
  // one workspace of an org must not reach the org-wide install. Only an older payload without
  // authorizations leaves nothing better to go on.
  if (authorizations.length === 0) {
    add(envelope.enterprise_id, "enterprise");
    add(envelope.context_enterprise_id, "enterprise");
  }
  return [...found.values()];
}

export type EventOutcome =
  | { handled: false; why: string }
  | {
      handled: true;
      reason: "app_uninstalled" | "token_revoked";
      connections: Array<{ connectionId: string; kinds: CredentialKind[] | "all" }>;
    };

/**
 * A bound on one event's work: an installation has one connection, a few when it was imported more
 * than once. Past this many (ascending ids), the rest are left as they are.
 */
const MAX_CONNECTIONS_PER_INSTALLATION = 100;

/** Only "no such connection" (or an id no connection could have) means not ours. */
function notOurs(error: unknown): boolean {
  const code = error instanceof TokenwardenError ? error.code : null;
  return code === "not_found" || code === "invalid_input";
}

async function slackConnection(warden: Warden, id: string): Promise<Connection | null> {
  try {
    const connection = await warden.connections.get(id);
    return connection.provider === "slack" ? connection : null;
  } catch (error) {
    // A store that failed must fail the request, so its event id is forgotten and Slack's retry acts on it.
    if (notOurs(error)) return null;
    throw error;
  }
}

/** The Slack connections of one candidate installation: the one under its id, then those whose metadata names it. */
async function connectionsOf(deps: EventDeps, candidate: InstallationCandidate): Promise<Connection[]> {
  const found: Connection[] = [];
  const byId = await slackConnection(deps.warden, candidate.id);
  if (byId !== null) found.push(byId);
  let ids: string[] = [];
  try {
    ids = await deps.store.findConnectionsByInstallation({
      provider: "slack",
      ...(candidate.team ? { teamId: candidate.id } : {}),
      ...(candidate.enterprise ? { enterpriseId: candidate.id } : {}),
      limit: MAX_CONNECTIONS_PER_INSTALLATION,
    });
  } catch (error) {
    if (!notOurs(error)) throw error;
  }
  for (const id of ids) {
    if (id === candidate.id) continue;
    const connection = await slackConnection(deps.warden, id);
    if (connection !== null) found.push(connection);
  }
  return found;
}

/**
 * Every connection of the installation the event is about. The candidates are tried in order and the
 * first that any connection belongs to is the installation: a workspace's uninstall inside an org
 * never reaches the org-wide install's connections, which the envelope's enterprise_id also names.
 */
async function findInstallation(deps: EventDeps, envelope: SlackEnvelope): Promise<Connection[]> {
  for (const candidate of candidateInstallations(envelope)) {
    const connections = await connectionsOf(deps, candidate);
    if (connections.length > 0) return connections;
  }
  return [];
}

/** Marks credentials dead; false when the connection was deleted meanwhile (nothing left to mark). */
async function markDead(
  warden: Warden,
  connectionId: string,
  kinds: CredentialKind[] | "all",
  reason: "app_uninstalled" | "token_revoked",
  happenedAtMs: number | null,
): Promise<boolean> {
  try {
    const marked = await warden.markNeedsReauth(
      connectionId,
      kinds,
      reason,
      happenedAtMs === null ? {} : { happenedAt: happenedAtMs },
    );
    return marked.length > 0;
  } catch (error) {
    if (error instanceof TokenwardenError && error.code === "not_found") return false;
    throw error;
  }
}

/** What acting on an event needs: the warden to act, the store to find an installation's connections. */
export interface EventDeps {
  warden: Warden;
  store: Pick<Store, "findConnectionsByInstallation">;
}

type EventBody = { type?: unknown; tokens?: { bot?: unknown; oauth?: unknown } };
const eventOf = (envelope: SlackEnvelope): EventBody =>
  (typeof envelope.event === "object" && envelope.event !== null ? envelope.event : {}) as EventBody;

/** Whether an event_callback is one this receiver acts on (the rest are acknowledged and ignored). */
export function actsOn(envelope: SlackEnvelope): boolean {
  const type = eventOf(envelope).type;
  return type === "app_uninstalled" || type === "tokens_revoked";
}

/** Whether `ids` names `id`: an id never recorded names nothing (as text it would match a revoked "undefined"). */
function named(ids: ReadonlySet<string>, id: unknown): boolean {
  return typeof id === "string" && id !== "" && ids.has(id);
}

/**
 * Acts on one event_callback, on every connection of its installation; never throws for an unknown
 * team or event type (Slack would retry). A store failure throws: the caller answers 5xx and Slack's
 * retry acts on the event again (a connection it had already marked dead as uninstalled is left as
 * it is, with no second event and no second `needs_reauth`: that episode has begun).
 */
export async function applySlackEvent(deps: EventDeps, envelope: SlackEnvelope): Promise<EventOutcome> {
  const event = eventOf(envelope);
  if (!actsOn(envelope)) return { handled: false, why: "event type not acted on" };
  const installation = await findInstallation(deps, envelope);
  if (installation.length === 0) return { handled: false, why: "unknown installation" };
  // Slack delivers late (retries for minutes, Delayed Events for a day): credentials issued since
  // the event (a reconnect) are not the ones it is about. `event_time` is in whole seconds, so the
  // event is taken to end with its second: a token issued in that second counts as older.
  const happenedAtMs =
    typeof envelope.event_time === "number" && Number.isFinite(envelope.event_time)
      ? (Math.floor(envelope.event_time) + 1) * 1000
      : null;
  const acted: Array<{ connectionId: string; kinds: CredentialKind[] | "all" }> = [];
  if (event.type === "app_uninstalled") {
    for (const connection of installation) {
      if (await markDead(deps.warden, connection.id, "all", "app_uninstalled", happenedAtMs))
        acted.push({ connectionId: connection.id, kinds: "all" });
    }
    if (acted.length === 0)
      return { handled: false, why: "every credential was issued after the event, or is gone" };
    return { handled: true, reason: "app_uninstalled", connections: acted };
  }
  const bots = new Set(asStrings(event.tokens?.bot));
  const users = new Set(asStrings(event.tokens?.oauth));
  for (const connection of installation) {
    const kinds = connection.credentials
      .filter((c) => {
        if (c.kind === "bot")
          return named(bots, c.providerData["bot_user_id"] ?? connection.metadata["bot_user_id"]);
        if (c.kind === "user") return named(users, c.providerData["user_id"]);
        return false;
      })
      .map((c) => c.kind);
    if (
      kinds.length > 0 &&
      (await markDead(deps.warden, connection.id, kinds, "token_revoked", happenedAtMs))
    )
      acted.push({ connectionId: connection.id, kinds });
  }
  if (acted.length === 0)
    return { handled: false, why: "no credential issued before the event matches the revoked ids" };
  return { handled: true, reason: "token_revoked", connections: acted };
}
