// The emulator's entities, after slack-api.md §9. Plain records; the rules that move them live in
// state.ts (install, refresh, exchange, revoke, uninstall) so each can cite its section once.

export type TokenKind = "bot" | "user";

export interface AppRecord {
  appId: string;
  name: string;
  clientId: string;
  clientSecret: string;
  signingSecret: string;
  /** The deprecated verification token that event envelopes still carry (§6.2). */
  verificationToken: string;
  /** One-way: once true it stays true (§3.1). */
  tokenRotation: boolean;
  /** One-way in Slack too (§2.4); enables `code_verifier` without `client_secret`, 30 d refresh tokens. */
  pkce: boolean;
  redirectUrls: string[];
  eventsUrl: string | null;
  /** Scopes `control.install` grants when the caller names none. */
  botScopes: string[];
  userScopes: string[];
}

export interface TeamRecord {
  teamId: string;
  name: string;
  domain: string;
  enterpriseId: string | null;
}

export interface EnterpriseRecord {
  enterpriseId: string;
  name: string;
  domain: string;
}

export interface UserRecord {
  userId: string;
  teamId: string;
  name: string;
  deactivated: boolean;
}

/** App × workspace, or app × enterprise for an org-wide install (§9). */
export interface InstallationRecord {
  /** `${appId}:${teamId or enterpriseId}`: also the prefix of credential keys. */
  key: string;
  appId: string;
  teamId: string | null;
  enterpriseId: string | null;
  isEnterpriseInstall: boolean;
  botUserId: string;
  botId: string;
  /** Cumulative across installs (§2.1 "Scopes are additive"). */
  botScopes: Set<string>;
  userScopes: Map<string, Set<string>>;
  installerUserId: string;
  uninstalled: boolean;
  /** Bumped by a reinstall after an uninstall; tokens of older generations answer `invalid_auth` (§9.7). */
  generation: number;
}

export type RevokeReason = "auth_revoke" | "active_token_limit" | "uninstalled" | "leaked" | "control";

export interface AccessTokenRecord {
  value: string;
  kind: TokenKind;
  rotating: boolean;
  appId: string;
  installationKey: string;
  generation: number;
  /** The authed user for a user token; the bot user for a bot token. */
  userId: string;
  credentialKey: string;
  issuedAtMs: number;
  expiresAtMs: number | null;
  revoked: { atMs: number; reason: RevokeReason } | null;
  /** Set once exchanged by `oauth.v2.exchange` (§3.6): a second exchange is refused. */
  exchangedAtMs: number | null;
}

export interface RefreshTokenRecord {
  value: string;
  kind: TokenKind;
  appId: string;
  installationKey: string;
  generation: number;
  userId: string;
  credentialKey: string;
  issuedAtMs: number;
  /** The refresh token this one was minted from; null for one minted by an install or exchange. */
  parent: string | null;
  /** The newest refresh token minted from this one: only it stays valid among its siblings (§3.4). */
  latestChild: string | null;
  firstUsedAtMs: number | null;
  revokedAtMs: number | null;
  /** PKCE apps only: 30 days (§2.4, §3.2). */
  expiresAtMs: number | null;
  /** A legacy token exchanged into this pair expires when this token is first used (§3.6). */
  legacyToken: string | null;
}

export interface AuthCodeRecord {
  value: string;
  appId: string;
  /** The redirect_uri sent to authorize, if one was: `oauth.v2.access` must then send it identically. */
  redirectUriSent: string | null;
  teamId: string;
  userId: string;
  enterpriseInstall: boolean;
  botScopes: string[];
  userScopes: string[];
  codeChallenge: string | null;
  createdAtMs: number;
  used: boolean;
}

/** What the state tells the event dispatcher (§6.3); the dispatcher owns envelopes and HTTP. */
export type DomainEvent =
  | {
      type: "tokens_revoked";
      appId: string;
      installation: InstallationRecord;
      tokens: { oauth: string[]; bot: string[] };
    }
  | { type: "app_uninstalled"; appId: string; installation: InstallationRecord };
