-- `connections import` of an @slack/oauth Installation used to store camelCase metadata (teamName,
-- enterpriseId, enterpriseName, appId, isEnterpriseInstall) and no team_id; everything that reads a
-- Slack connection's metadata reads the install flow's snake_case keys. This adds those keys to the
-- rows that import wrote, as it now writes them: where absent only (`defaults || metadata`: a key a
-- check or a reinstall wrote since stays), nothing removed (an app may read the old keys). No other
-- row is touched: only Slack rows whose keys are all among those two sets (an operator's own metadata
-- has others), whose id is Slack's (the import's id is the workspace's, T…, or for an org-wide install
-- the org's, E…, equal to its enterpriseId), unless Slack named another one since (below). Without
-- team_id, enterprise_id would make a workspace's row read as its org's org-wide install, so the two
-- always come together. One pass over the connections; it locks only the rows it rewrites (a
-- handful), and waits for them at most as long as any migration waits for a lock.
UPDATE connections c
SET metadata = jsonb_build_object(
  'team_id',
  CASE WHEN c.metadata -> 'isEnterpriseInstall' = 'true'::jsonb THEN NULL ELSE to_jsonb(c.id) END,
  'team_name',
  CASE
    WHEN NOT c.metadata ? 'isEnterpriseInstall' AND jsonb_typeof(c.metadata -> 'teamName') = 'string'
    THEN c.metadata -> 'teamName'
  END,
  'enterprise_id',
  CASE WHEN jsonb_typeof(c.metadata -> 'enterpriseId') = 'string' THEN c.metadata -> 'enterpriseId' END,
  'enterprise_name',
  CASE WHEN jsonb_typeof(c.metadata -> 'enterpriseName') = 'string' THEN c.metadata -> 'enterpriseName' END,
  'is_enterprise_install',
  c.metadata ? 'isEnterpriseInstall', -- the rows chosen hold it only as true (the import wrote no false)
  'app_id',
  CASE WHEN jsonb_typeof(c.metadata -> 'appId') = 'string' THEN c.metadata -> 'appId' END,
  'authed_user_id',
  (SELECT CASE WHEN jsonb_typeof(u.provider_data -> 'user_id') = 'string' THEN u.provider_data -> 'user_id' END
     FROM credentials u WHERE u.connection_id = c.id AND u.kind = 'user'),
  'bot_user_id',
  (SELECT CASE WHEN jsonb_typeof(b.provider_data -> 'bot_user_id') = 'string' THEN b.provider_data -> 'bot_user_id' END
     FROM credentials b WHERE b.connection_id = c.id AND b.kind = 'bot')
) || c.metadata
WHERE c.provider = 'slack'
  AND jsonb_typeof(c.metadata) = 'object'
  AND c.metadata ?| ARRAY['teamName', 'enterpriseId', 'enterpriseName', 'appId', 'isEnterpriseInstall']
  -- `-` removes keys from an object (and never fails on another value): nothing may be left.
  AND c.metadata - ARRAY['teamName', 'enterpriseId', 'enterpriseName', 'appId', 'isEnterpriseInstall',
                         'team_id', 'team_name', 'enterprise_id', 'enterprise_name', 'is_enterprise_install',
                         'app_id', 'authed_user_id', 'bot_user_id'] = '{}'::jsonb
  AND ((NOT c.metadata ? 'isEnterpriseInstall' AND c.id ~ '^T[A-Z0-9]{2,}$')
    OR (c.metadata -> 'isEnterpriseInstall' = 'true'::jsonb AND c.id ~ '^E[A-Z0-9]{2,}$'
        AND c.metadata ->> 'enterpriseId' = c.id))
  -- An id's shape is no proof (an operator's own `TESTCO`, imported with the contract's example
  -- metadata { teamName }): Slack's word is. Every refresh and check records in the credential's
  -- provider data the workspace (and org) its tokens belong to; a row whose credentials name another
  -- is not an installation imported under its id, and a team_id guessed from the id would stay wrong
  -- for good (a check fills in only what is missing), refusing every reconnect. It is left alone, and
  -- its next healthy check records its workspace.
  AND NOT EXISTS (
    SELECT 1 FROM credentials p
     WHERE p.connection_id = c.id
       AND CASE
         WHEN c.metadata ? 'isEnterpriseInstall'
         THEN jsonb_typeof(p.provider_data -> 'enterprise_id') = 'string'
              AND p.provider_data ->> 'enterprise_id' <> c.id
         ELSE jsonb_typeof(p.provider_data -> 'team_id') = 'string'
              AND p.provider_data ->> 'team_id' <> c.id
       END);
