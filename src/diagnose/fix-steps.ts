/**
 * The exact steps `diagnose` prints, shared by every explanation so the same
 * situation always gets the same words (issue 5: refresh and persist both
 * tokens; reinstall or re-run OAuth; update the secret store; verify with auth.test).
 */

export interface FixContext {
  /** Slack's origin (or the emulator's), for the curl lines. */
  baseUrl: string;
  /** The stored connection, when the diagnosis is about one. */
  connectionId?: string;
  /** Its signed reconnect link, when the server's public URL is known (TOKENWARDEN_PUBLIC_URL). */
  reconnectUrl?: string | null;
  /** The credential the diagnosis is about, when it is one (its token's variable in the verify step). */
  credential?: string;
}

export const FIX = {
  refreshAndPersist: (c: FixContext): string =>
    c.connectionId === undefined
      ? `Refresh now and persist BOTH returned tokens (the new access token and the rotated refresh token) before using either: tokenwarden diagnose token --token-env SLACK_REFRESH_TOKEN --refresh (or curl -s -X POST ${c.baseUrl}/api/oauth.v2.access -d client_id=… -d client_secret=… -d grant_type=refresh_token -d refresh_token=…)`
      : `Refresh now; tokenwarden stores the new access token and the rotated refresh token in one transaction: tokenwarden connections refresh ${c.connectionId}`,
  refreshWithinGrace: (c: FixContext): string =>
    `Refresh now, within Slack's grace window (minutes): tokenwarden connections refresh ${c.connectionId ?? "<id>"}. It presents the stored refresh token once more; if Slack had already rotated it, that still works for a short while after, and the new pair is stored.`,
  keepRefreshing: (c: FixContext): string =>
    c.connectionId === undefined
      ? "Refresh ahead of expiry (Slack's SDKs start 2 h before the 12 h run out), from one place at a time, and save the rotated refresh token every time — or let tokenwarden do it (tokenwarden serve, or warden.startRefresher())."
      : "Keep a refresher running so tokens are renewed ahead of expiry: tokenwarden serve (or warden.startRefresher() in your app).",
  checkValue: (): string =>
    "Check that this is the token you meant: every Slack token starts with xoxb-, xoxp-, xoxe.xoxb-, xoxe.xoxp- or (a refresh token) xoxe-, and this value does not; it may be another secret (a client or signing secret) or a token with its start cut off. Copy it again from where your app reads it.",
  reinstall: (c: FixContext): string =>
    `Reinstall the app or re-run OAuth: a person with access to the workspace opens the install link (Slack app settings → Install App, or your OAuth install flow${reconnectLinkOf(c)}) and approves it; no API call can revive this credential.`,
  importNew: (c: FixContext): string =>
    c.connectionId === undefined
      ? "Store the new tokens where your app reads them: tokenwarden connections import new-install.json (our JSON or an @slack/oauth installation), or update your secret store."
      : `Store the new tokens under the same id: tokenwarden connections import new-install.json (with "id": "${c.connectionId}") — the server's OAuth callback does this for you.`,
  updateSecretStore: (): string =>
    "Update the secret store: replace the old value everywhere it is kept (secret manager, environment variables, CI settings), and remove the old one.",
  verify: (c: FixContext): string => {
    const env = c.credential === "user" ? "SLACK_USER_TOKEN" : "SLACK_BOT_TOKEN";
    return `Verify with auth.test: tokenwarden diagnose token --token-env ${env} --slack-base-url ${c.baseUrl} (or curl -s -X POST ${c.baseUrl}/api/auth.test -H "Authorization: Bearer $${env}")`;
  },
  signOutUser: (c: FixContext): string =>
    `Or, if that member's user token is no longer needed, remove it and keep the rest of the connection: tokenwarden connections delete ${c.connectionId ?? "<id>"} --kind user --yes (DELETE /v1/connections/${c.connectionId ?? "<id>"}/credentials/user); the connection works again on its other credentials.`,
  fixClientCredentials: (): string =>
    "Copy the Client ID and Client Secret again from the app's Basic Information page (api.slack.com/apps → your app) into SLACK_CLIENT_ID / SLACK_CLIENT_SECRET (or your secret manager); check that they belong to the app that issued these tokens, then restart whatever reads them.",
  restoreKey: (): string =>
    "Put the key that sealed them (the key id named above) back into TOKENWARDEN_ENCRYPTION_KEY after the current first key (k2:NEW,k1:OLD), on every instance that reads this database, and restart them; they are refreshed within the hour. If a key with that id is already there, it is another key than the one that sealed them: find the original (your secret manager's history, a backup). Then run tokenwarden keys rotate before retiring the old key again.",
  checkApp: (c: FixContext): string =>
    `Check the app credentials without side effects: tokenwarden diagnose app --client-id "$SLACK_CLIENT_ID" --client-secret "$SLACK_CLIENT_SECRET" --slack-base-url ${c.baseUrl}`,
  addScope: (missing: string[]): string =>
    `Add the missing scope${missing.length === 1 ? "" : "s"} (${missing.join(", ")}) under OAuth & Permissions, then reinstall the app so a person grants ${missing.length === 1 ? "it" : "them"}; the new install returns a new token.`,
  waitAndRetry: (retryAfterSeconds: number | null): string =>
    retryAfterSeconds === null
      ? "Wait and retry with exponential backoff; nothing is wrong with the token. tokenwarden already backs off and keeps serving the still-valid token."
      : `Wait ${retryAfterSeconds} s (Slack's Retry-After) and retry; nothing is wrong with the token. tokenwarden honours Retry-After on its own.`,
  checkNetwork: (c: FixContext): string =>
    `Check that ${c.baseUrl} is reachable from this machine (DNS, proxy, firewall, or is the emulator running?), then run the diagnosis again.`,
  enableRotation: (): string =>
    "If you want expiring tokens with refresh tokens: app settings → OAuth & Permissions → Advanced token security via token rotation → Opt in (irreversible), then exchange each long-lived token once with oauth.v2.exchange or reinstall.",
  spendRefreshToken: (): string =>
    "A refresh token can only be tested by spending it. To do that safely, run again with --refresh --client-id … --client-secret …: the new pair is printed (and saved if the token belongs to a stored connection). Without saving the new pair, the app that holds this token loses its connection.",
} as const;

/**
 * Where tokenwarden serve reconnects the connection: its signed link when the public URL is known,
 * else the route's path (bare, it still reconnects, without preselecting the workspace).
 */
function reconnectLinkOf(c: FixContext): string {
  if (c.reconnectUrl) return `; its reconnect link: ${c.reconnectUrl}`;
  if (c.connectionId === undefined) return "";
  return `; with tokenwarden serve: /oauth/slack/install?connection_id=${encodeURIComponent(c.connectionId)}`;
}
