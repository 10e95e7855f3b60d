-- The server's durable state: the webhook outbox, single-use marks (OAuth state, Slack event ids,
-- health-check slots) and a few settings (the API key's hash, the OAuth state secret).

-- Webhooks waiting for (or done with) delivery. Rows are written in the same transaction as the
-- change that causes them (DESIGN.md invariant 6), so a crash never loses one.
CREATE TABLE outbox (
  id                 TEXT PRIMARY KEY, -- also the X-Tokenwarden-Id idempotency id
  type               TEXT NOT NULL,
  payload            JSONB NOT NULL,
  created_at_ms      BIGINT NOT NULL,
  attempts           INTEGER NOT NULL DEFAULT 0,
  -- when the next delivery may start; NULL once delivered
  next_attempt_at_ms BIGINT,
  lease_owner        TEXT,
  lease_until_ms     BIGINT,
  delivered_at_ms    BIGINT,
  last_error         TEXT
);
CREATE INDEX outbox_next_attempt_at ON outbox (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;

-- "Has this happened before?" across every process: consumed OAuth states, seen Slack event ids.
CREATE TABLE once_marks (
  scope         TEXT NOT NULL,
  key           TEXT NOT NULL,
  expires_at_ms BIGINT NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX once_marks_expires_at ON once_marks (expires_at_ms);

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
