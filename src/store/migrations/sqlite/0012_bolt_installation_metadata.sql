-- `connections import` of an @slack/oauth Installation used to store camelCase metadata (teamName,
-- enterpriseId, enterpriseName, appId, isEnterpriseInstall) and no team_id; everything that reads a
-- Slack connection's metadata reads the install flow's snake_case keys. This adds those keys to the
-- rows that import wrote, as it now writes them: where absent only (a key a check or a reinstall
-- wrote since stays), nothing removed (an app may read the old keys). No other row is touched: only
-- Slack rows whose keys are all among those two sets (an operator's own metadata has others), whose
-- id is Slack's (the import's id is the workspace's, T…, or for an org-wide install the org's, E…,
-- equal to its enterpriseId), unless Slack named another one since (below). Without team_id,
-- enterprise_id would make a workspace's row read as its org's org-wide install, so the two always
-- come together. One pass over the Slack connections.
UPDATE connections
SET metadata = json_insert(
  metadata,
  '$.team_id',
  CASE WHEN json_type(metadata, '$.isEnterpriseInstall') = 'true' THEN NULL ELSE id END,
  '$.team_name',
  CASE
    WHEN json_type(metadata, '$.isEnterpriseInstall') IS NULL AND json_type(metadata, '$.teamName') = 'text'
    THEN json_extract(metadata, '$.teamName')
  END,
  '$.enterprise_id',
  CASE WHEN json_type(metadata, '$.enterpriseId') = 'text' THEN json_extract(metadata, '$.enterpriseId') END,
  '$.enterprise_name',
  CASE WHEN json_type(metadata, '$.enterpriseName') = 'text' THEN json_extract(metadata, '$.enterpriseName') END,
  '$.is_enterprise_install',
  json(CASE WHEN json_type(metadata, '$.isEnterpriseInstall') = 'true' THEN 'true' ELSE 'false' END),
  '$.app_id',
  CASE WHEN json_type(metadata, '$.appId') = 'text' THEN json_extract(metadata, '$.appId') END,
  '$.authed_user_id',
  (SELECT CASE WHEN json_type(provider_data, '$.user_id') = 'text' THEN json_extract(provider_data, '$.user_id') END
     FROM credentials WHERE connection_id = connections.id AND kind = 'user'),
  '$.bot_user_id',
  (SELECT CASE WHEN json_type(provider_data, '$.bot_user_id') = 'text' THEN json_extract(provider_data, '$.bot_user_id') END
     FROM credentials WHERE connection_id = connections.id AND kind = 'bot')
)
WHERE provider = 'slack'
  AND json_type(metadata) = 'object'
  AND (json_type(metadata, '$.teamName') IS NOT NULL
    OR json_type(metadata, '$.enterpriseId') IS NOT NULL
    OR json_type(metadata, '$.enterpriseName') IS NOT NULL
    OR json_type(metadata, '$.appId') IS NOT NULL
    OR json_type(metadata, '$.isEnterpriseInstall') IS NOT NULL)
  AND NOT EXISTS (
    SELECT 1 FROM json_each(connections.metadata)
     WHERE key NOT IN ('teamName', 'enterpriseId', 'enterpriseName', 'appId', 'isEnterpriseInstall',
                       'team_id', 'team_name', 'enterprise_id', 'enterprise_name', 'is_enterprise_install',
                       'app_id', 'authed_user_id', 'bot_user_id'))
  AND length(id) >= 3 AND id NOT GLOB '?*[^A-Z0-9]*'
  AND ((json_type(metadata, '$.isEnterpriseInstall') IS NULL AND id GLOB 'T*')
    OR (json_type(metadata, '$.isEnterpriseInstall') = 'true' AND id GLOB 'E*'
        AND json_extract(metadata, '$.enterpriseId') = id))
  -- An id's shape is no proof (an operator's own `TESTCO`, imported with the contract's example
  -- metadata { teamName }): Slack's word is. Every refresh and check records in the credential's
  -- provider data the workspace (and org) its tokens belong to; a row whose credentials name another
  -- is not an installation imported under its id, and a team_id guessed from the id would stay wrong
  -- for good (a check fills in only what is missing), refusing every reconnect. It is left alone, and
  -- its next healthy check records its workspace.
  AND NOT EXISTS (
    SELECT 1 FROM credentials
     WHERE connection_id = connections.id
       AND CASE
         WHEN json_type(connections.metadata, '$.isEnterpriseInstall') IS NULL
         THEN json_type(provider_data, '$.team_id') = 'text'
              AND json_extract(provider_data, '$.team_id') <> connections.id
         ELSE json_type(provider_data, '$.enterprise_id') = 'text'
              AND json_extract(provider_data, '$.enterprise_id') <> connections.id
       END);
