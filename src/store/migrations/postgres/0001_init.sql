-- tokenwarden schema, PostgreSQL. Runs with search_path set to the target schema, under an advisory lock.
-- Instants are BIGINT epoch ms bound by the caller: SQL never calls now().
-- Tokens are only ever stored sealed (AES-256-GCM, `v1.<keyId>.…`), bound to their row and field.

CREATE TABLE connections (
  id            TEXT COLLATE "C" PRIMARY KEY, -- byte order, as SQLite sorts: cursor paging agrees across dialects
  provider      TEXT NOT NULL,
  -- the worst status of its credentials, rewritten in every transaction that changes one
  status        TEXT NOT NULL CHECK (status IN ('active', 'refresh_failing', 'needs_reauth')),
  reason        TEXT,
  metadata      JSONB NOT NULL DEFAULT '{}',
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);
CREATE INDEX connections_provider_id ON connections (provider, id);
CREATE INDEX connections_status_id ON connections (status, id);

CREATE TABLE credentials (
  connection_id        TEXT COLLATE "C" NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
  kind                 TEXT NOT NULL CHECK (kind IN ('bot', 'user', 'default')),
  provider             TEXT NOT NULL,
  access_token_sealed  TEXT NOT NULL,
  refresh_token_sealed TEXT,
  token_type           TEXT NOT NULL,
  scopes               JSONB NOT NULL DEFAULT '[]',
  expires_at_ms        BIGINT,
  issued_at_ms         BIGINT NOT NULL,
  refreshed_at_ms      BIGINT,
  status               TEXT NOT NULL CHECK (status IN ('active', 'refresh_failing', 'needs_reauth')),
  reason               TEXT,
  last_error           TEXT,
  version              BIGINT NOT NULL,
  failure_count        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at_ms   BIGINT,
  -- the refresh journal: true from the moment a claim is taken until an outcome is recorded
  refresh_in_doubt     BOOLEAN NOT NULL DEFAULT false,
  provider_data        JSONB NOT NULL DEFAULT '{}',
  -- when the refresh policy wants the next refresh; next_run_at_ms returns to it after a release
  refresh_due_at_ms    BIGINT,
  claim_id             TEXT,
  claim_owner          TEXT,
  claim_until_ms       BIGINT,
  -- refresh_in_doubt and next_run_at_ms as they were before the claim, restored by releaseClaim
  claim_prev_in_doubt  BOOLEAN,
  claim_prev_run_at_ms BIGINT,
  -- the scheduler's one column: due time, backoff end or claim expiry; NULL = nothing to do
  next_run_at_ms       BIGINT,
  PRIMARY KEY (connection_id, kind)
);
CREATE INDEX credentials_next_run_at ON credentials (next_run_at_ms) WHERE next_run_at_ms IS NOT NULL;

CREATE TABLE events (
  id            BIGSERIAL PRIMARY KEY,
  connection_id TEXT COLLATE "C" NOT NULL,
  kind          TEXT,
  type          TEXT NOT NULL,
  reason        TEXT,
  at_ms         BIGINT NOT NULL,
  data          JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX events_connection_id ON events (connection_id, id);

CREATE TABLE provider_states (
  provider   TEXT PRIMARY KEY,
  status     TEXT NOT NULL CHECK (status IN ('ok', 'misconfigured')),
  reason     TEXT,
  last_error TEXT,
  since_ms   BIGINT NOT NULL
);
