-- The refresher claims due credentials per provider. With the due index on next_run_at_ms alone, a
-- claim for one provider read past every row of the others due earlier: a paused or rate-limited
-- provider's backlog of 200,000 rows made each claim of another provider cost 55 ms. Indexed by
-- provider first, a claim reads its own provider's due rows only. Claims, renewals and releases still
-- change no indexed column (HOT updates, migration 0006).
-- The table is locked up front, for the whole build (about 0.7 s per million credentials on the
-- development machine): building under the index build's own lock and then dropping the old index
-- would upgrade that lock mid-transaction and could deadlock with an instance of the previous version
-- holding a row lock. Such instances, until replaced, claim through a scan of the table instead.
LOCK TABLE credentials IN ACCESS EXCLUSIVE MODE;
CREATE INDEX credentials_provider_next_run_at ON credentials (provider, next_run_at_ms)
  WHERE next_run_at_ms IS NOT NULL;
DROP INDEX credentials_next_run_at;
