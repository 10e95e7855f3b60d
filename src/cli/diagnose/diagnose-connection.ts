/** The I/O half of `diagnose connection`: read status, journal and events; explain offline. */
import { TokenwardenError } from "../../core/errors.js";
import type { Store } from "../../core/ports.js";
import type { CredentialKind, StoredCredential } from "../../core/types.js";
import {
  type ConnectionExplanation,
  explainConnection,
  type UnopenableCredential,
} from "../../diagnose/explain-connection.js";
import type { Warden } from "../../engine/warden.js";

export interface DiagnoseConnectionOptions {
  id: string;
  store: Store;
  warden: Warden;
  baseUrl: string;
  nowMs: number;
  /** How many events to read, newest first. */
  eventLimit?: number;
  /** A connection's signed reconnect link (null when the server's public URL is not known). */
  reconnectUrl?: (connectionId: string, provider: string) => string | null;
}

export async function diagnoseConnection(o: DiagnoseConnectionOptions): Promise<ConnectionExplanation> {
  const connection = await o.warden.connections.get(o.id);
  const events = await o.warden.connections.events(o.id, { limit: o.eventLimit ?? 200 });
  const refreshInDoubt: CredentialKind[] = [];
  const unopenable: UnopenableCredential[] = [];
  for (const { kind } of connection.credentials) {
    let c: StoredCredential | null;
    try {
      c = await o.store.getCredential({ connectionId: o.id, kind });
    } catch (error) {
      // Its tokens do not open with this ring (a key removed too early): exactly the state that stops
      // its refreshes without a word on the connection, so it is explained rather than thrown.
      if (!(error instanceof TokenwardenError) || error.code !== "config_invalid") throw error;
      unopenable.push({ kind, problem: error.message });
      continue;
    }
    if (c === null) continue;
    // A live claim is a refresh in flight, its outcome still to come; a lapsed one's holder is gone.
    const claimHeld = c.claimUntilMs !== null && c.claimUntilMs > o.nowMs;
    if (c.refreshInDoubt && !claimHeld) refreshInDoubt.push(c.kind);
  }
  // Through the warden when it runs this provider: it says whether a flag names its own credentials.
  const here = await o.warden.providerState(connection.provider).catch(() => null);
  const providerState = here ?? (await o.store.getProviderState(connection.provider));
  return explainConnection({
    connection,
    events,
    refreshInDoubt,
    unopenable,
    providerState,
    flagNamesOtherCredentials: here !== null && here.status === "misconfigured" && !here.appliesHere,
    nowMs: o.nowMs,
    context: { baseUrl: o.baseUrl, reconnectUrl: o.reconnectUrl?.(o.id, connection.provider) ?? null },
  });
}
