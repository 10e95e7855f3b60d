-- The refresh backlog counts a credential the provider keeps failing from when it first fell due:
-- backoff moves its next run past now, and counted from that, the lag stayed at seconds through an
-- outage while tokens expired. Partial, so it holds only the failing credentials (none, most days),
-- and a refresh of a healthy credential, which leaves its status alone, stays a HOT update.
CREATE INDEX credentials_failing_due ON credentials (provider, refresh_due_at_ms)
  WHERE status = 'refresh_failing';
