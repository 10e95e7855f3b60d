-- Delivered webhooks are pruned after a retention period; this finds them without a table scan.
CREATE INDEX outbox_delivered_at ON outbox (delivered_at_ms) WHERE delivered_at_ms IS NOT NULL;
