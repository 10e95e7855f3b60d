-- The refresher claims due credentials per provider. With the due index on next_run_at_ms alone, a
-- claim for one provider read past every row of the others due earlier (a paused provider's backlog
-- taxed every other provider's claims). Indexed by provider first, a claim reads its own rows only.
CREATE INDEX credentials_provider_next_run_at ON credentials (provider, next_run_at_ms)
  WHERE next_run_at_ms IS NOT NULL;
DROP INDEX credentials_next_run_at;
