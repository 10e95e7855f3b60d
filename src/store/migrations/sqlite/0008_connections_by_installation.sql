-- A Slack event names its installation by workspace (team_id) or org (enterprise_id); a connection
-- imported under an id of its own knows them only from its metadata. These find an installation's
-- connections without reading every connection's metadata. SQLite matches an expression index only
-- to the very expression it was built on: findConnectionsByInstallation (BY_INSTALLATION_SQL) uses
-- these. Ending with id, they hand its union its rows in order: without that, the planner preferred
-- connections_provider_id (already in id order) and read every connection of the provider.
CREATE INDEX connections_metadata_team_id
  ON connections (provider, json_extract(metadata, '$.team_id'), id)
  WHERE json_extract(metadata, '$.team_id') IS NOT NULL;
CREATE INDEX connections_metadata_enterprise_id
  ON connections (provider, json_extract(metadata, '$.enterprise_id'), id)
  WHERE json_extract(metadata, '$.enterprise_id') IS NOT NULL;
