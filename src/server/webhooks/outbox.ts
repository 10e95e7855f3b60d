import type { OutboxMessage } from "../../core/types.js";

/**
 * The body of a webhook: the same bytes on every attempt of one message, so a
 * receiver may dedupe on `id` (= `X-Tokenwarden-Id`) and compare if it likes.
 */
export function webhookBody(
  m: OutboxMessage,
  reconnectUrl: (connectionId: string, provider: string) => string | null,
): string {
  const data: Record<string, unknown> = { ...m.payload };
  if (m.type === "connection.needs_reauth" && typeof data["connection_id"] === "string") {
    data["reconnect_url"] = reconnectUrl(data["connection_id"], String(data["provider"] ?? "slack"));
  }
  return JSON.stringify({ id: m.id, type: m.type, created_at: new Date(m.createdAtMs).toISOString(), data });
}
