/** The I/O half of `diagnose connection`: read status, journal and events; explain offline. */
import type { Store } from "../../core/ports.js";
import type { CredentialKind } from "../../core/types.js";
import { type ConnectionExplanation, explainConnection } from "../../diagnose/explain-connection.js";
import type { Warden } from "../../engine/warden.js";

export interface DiagnoseConnectionOptions {
  id: string;
  store: Store;
  warden: Warden;
  baseUrl: string;
  nowMs: number;
  /** How many events to read, newest first. */
  eventLimit?: number;
}

export async function diagnoseConnection(o: DiagnoseConnectionOptions): Promise<ConnectionExplanation> {
  const connection = await o.warden.connections.get(o.id);
  const events = await o.warden.connections.events(o.id, { limit: o.eventLimit ?? 200 });
  const refreshInDoubt: CredentialKind[] = [];
  for (const c of await o.store.listCredentials(o.id)) {
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
    providerState,
    flagNamesOtherCredentials: here !== null && here.status === "misconfigured" && !here.appliesHere,
    nowMs: o.nowMs,
    context: { baseUrl: o.baseUrl },
  });
}
