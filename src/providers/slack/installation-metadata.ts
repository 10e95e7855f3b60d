/**
 * The metadata of a Slack connection, as every part of tokenwarden reads it: the install callback's
 * reconnect and ownership checks (`team_id`, `enterprise_id`, `app_id`, `authed_user_id`), the events
 * route and both stores' findConnectionsByInstallation (`team_id`, `enterprise_id`), a health check
 * filling in what is missing. Written here only, by the install callback and by `connections import`
 * of an @slack/oauth Installation, so an imported installation is stored as one installed here.
 */

/** What an installation says of itself; null where it says nothing. */
export interface InstallationFacts {
  /** null for an org-wide install: it has no workspace of its own. */
  teamId: string | null;
  teamName: string | null;
  enterpriseId: string | null;
  enterpriseName: string | null;
  isEnterpriseInstall: boolean;
  appId: string | null;
  /** The member who installed. */
  authedUserId: string | null;
  botUserId: string | null;
}

/** Every key always present (null when unknown), so a reconnect's merge replaces each of them. */
export function installationMetadata(i: InstallationFacts): Record<string, string | boolean | null> {
  return {
    team_id: i.teamId,
    team_name: i.teamName,
    enterprise_id: i.enterpriseId,
    enterprise_name: i.enterpriseName,
    is_enterprise_install: i.isEnterpriseInstall,
    app_id: i.appId,
    authed_user_id: i.authedUserId,
    bot_user_id: i.botUserId,
  };
}
