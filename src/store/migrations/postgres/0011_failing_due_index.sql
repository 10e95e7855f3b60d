-- The refresh backlog counts a credential the provider keeps failing from when it first fell due:
-- backoff moves its next run past now, and counted from that, the lag stayed at seconds through an
-- outage while tokens expired. Partial, so it holds only the failing credentials (none, most days),
-- and claims and lease renewals, which change neither status nor refresh_due_at_ms, stay HOT updates.
CREATE INDEX credentials_failing_due ON credentials (provider, refresh_due_at_ms)
  WHERE status = 'refresh_failing';
