/**
 * Where a person reconnects a dead connection: the provider's install route on tokenwarden's public
 * URL, naming the connection (the server's install flow then refuses any other workspace). One
 * formula for the engine's `needs_reauth` events, the server's answers and webhooks, and the CLI.
 */
export function reconnectUrlOf(publicUrl: string, provider: string, connectionId: string): string {
  return `${publicUrl.replace(/\/+$/, "")}/oauth/${encodeURIComponent(provider)}/install?connection_id=${encodeURIComponent(connectionId)}`;
}
