-- The refresher claims due credentials per provider. With the due index on next_run_at_ms alone, a
-- claim for one provider read past every row of the others due earlier: a paused or rate-limited
-- provider's backlog of 200,000 rows made each claim of another provider cost 55 ms. Indexed by
-- provider first, a claim reads its own provider's due rows only. Claims, renewals and releases still
-- change no indexed column (HOT updates, migration 0006). Built inside the migration's transaction,
-- so writes to credentials wait for it: about 0.7 s per million credentials on the development machine.
CREATE INDEX credentials_provider_next_run_at ON credentials (provider, next_run_at_ms)
  WHERE next_run_at_ms IS NOT NULL;
DROP INDEX credentials_next_run_at;
