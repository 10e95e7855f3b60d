-- A Slack event names its installation by workspace (team_id) or org (enterprise_id); a connection
-- imported under an id of its own knows them only from its metadata. These find an installation's
-- connections (findConnectionsByInstallation, byInstallationSql: the same expressions) without
-- reading every connection's metadata. Only rows that hold the key are indexed.
-- Not CONCURRENTLY: migrations run in one transaction. Each build holds a SHARE lock on connections
-- until commit (both together about 1.4 s per million connections on the development machine), so
-- writes to connections (imports, status changes) wait for it; reads and claims do not. Both builds
-- take that same lock: unlike 0007 nothing is upgraded mid-transaction, and no lock needs taking up
-- front.
-- Only ids of a sane length are indexed: a B-tree entry holds at most 2704 bytes, and metadata is
-- free-form, so a long value would make its import fail (and this migration, on a database holding
-- one). No Slack id comes near 255 bytes; the lookup asks for the same bound.
CREATE INDEX connections_metadata_team_id ON connections (provider, (metadata ->> 'team_id'))
  WHERE octet_length(metadata ->> 'team_id') <= 255;
CREATE INDEX connections_metadata_enterprise_id ON connections (provider, (metadata ->> 'enterprise_id'))
  WHERE octet_length(metadata ->> 'enterprise_id') <= 255;
