-- A Slack event names its installation by workspace (team_id) or org (enterprise_id); a connection
-- imported under an id of its own knows them only from its metadata. These find an installation's
-- connections (findConnectionsByInstallation, byInstallationSql: the same expressions) without
-- reading every connection's metadata. Only rows that hold the key are indexed.
-- Not CONCURRENTLY: migrations run in one transaction. Each build holds a SHARE lock on connections
-- until commit (both together about 1.4 s per million connections on the development machine), so
-- writes to connections (imports, status changes) wait for it; reads and claims do not. Both builds
-- take that same lock: unlike 0007 nothing is upgraded mid-transaction, and no lock needs taking up
-- front.
CREATE INDEX connections_metadata_team_id ON connections (provider, (metadata ->> 'team_id'))
  WHERE (metadata ->> 'team_id') IS NOT NULL;
CREATE INDEX connections_metadata_enterprise_id ON connections (provider, (metadata ->> 'enterprise_id'))
  WHERE (metadata ->> 'enterprise_id') IS NOT NULL;
