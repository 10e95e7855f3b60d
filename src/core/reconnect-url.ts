/** Signs a link for one connection (crypto/reconnect-link.ts): proof that tokenwarden made it. */
export type ReconnectLinkSignature = (provider: string, connectionId: string) => string;

/**
 * Where a person reconnects a dead connection: the provider's install route on tokenwarden's public
 * URL, naming the connection (the server's install flow then refuses any other workspace), signed so
 * the route may preselect its workspace and say when it was deleted (`null`: a bare link, which
 * still reconnects but is told nothing a stranger could not be). One formula for the engine's
 * `needs_reauth` events, the server's answers and webhooks, and the CLI.
 */
export function reconnectUrlOf(
  publicUrl: string,
  provider: string,
  connectionId: string,
  sign: ReconnectLinkSignature | null,
): string {
  const bare = `${publicUrl.replace(/\/+$/, "")}/oauth/${encodeURIComponent(provider)}/install?connection_id=${encodeURIComponent(connectionId)}`;
  return sign === null ? bare : `${bare}&sig=${sign(provider, connectionId)}`;
}
