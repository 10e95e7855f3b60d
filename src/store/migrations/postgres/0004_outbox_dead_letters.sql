-- Webhooks given up on after their retry window (dead letters): never tried again, kept for
-- inspection like delivered ones, then pruned after the same retention period.
ALTER TABLE outbox ADD COLUMN abandoned_at_ms BIGINT;
CREATE INDEX outbox_abandoned_at ON outbox (abandoned_at_ms) WHERE abandoned_at_ms IS NOT NULL;
