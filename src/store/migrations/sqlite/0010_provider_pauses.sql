-- A 429 from a provider's token endpoint pauses every instance, not only the one that got it: Slack
-- limits oauth.v2.access per app, so the others would each send into the limit and get a 429 of their
-- own (and may extend it). The instance that got it records until when; the others read it at their
-- next provider sync. One row per provider, kept: a pause that has ended is an instant in the past.
CREATE TABLE provider_pauses (
  provider TEXT PRIMARY KEY,
  until_ms INTEGER NOT NULL,
  error    TEXT NOT NULL
) STRICT;
