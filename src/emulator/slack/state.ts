// The Slack model the emulator serves: apps, workspaces, installations and tokens, and the rules that
// move them (slack-api.md §2 install, §3 rotation, §4.3 revoke, §4.4 uninstall, §9 transitions).
// No HTTP here: routes turn requests into these calls and results into Slack's JSON.
import type { EmulatorClock } from "./clock.js";
import type { CounterSet } from "./counters.js";
import {
  newAuthCode,
  newBotToken,
  newClientId,
  newHexSecret,
  newRefreshToken,
  newRotatingAccessToken,
  newUserToken,
  slackId,
} from "./identifiers.js";
import type {
  AccessTokenRecord,
  AppRecord,
  AuthCodeRecord,
  DomainEvent,
  EnterpriseRecord,
  InstallationRecord,
  RefreshTokenRecord,
  RevokeReason,
  TeamRecord,
  TokenKind,
  UserRecord,
} from "./model.js";

export interface StateKnobs {
  /** `expires_in` of rotating access tokens; Slack: always 43200 (§3.2). */
  accessTtlSeconds: number;
  /** How long a used refresh token keeps working; Slack: "a short grace period" [U] (§3.4). */
  refreshGraceSeconds: number;
  /** Unexpired rotating access tokens kept per credential; Slack: 2 (§3.4). */
  activeTokenLimit: number;
  /** Auth code lifetime; Slack: 10 minutes (§2.2). */
  codeTtlSeconds: number;
  /** PKCE apps' refresh-token lifetime; Slack: 30 days (§2.4). */
  pkceRefreshTtlSeconds: number;
}

export const DEFAULT_KNOBS: StateKnobs = {
  accessTtlSeconds: 43_200,
  refreshGraceSeconds: 120,
  activeTokenLimit: 2,
  codeTtlSeconds: 600,
  pkceRefreshTtlSeconds: 30 * 24 * 3600,
};

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

export interface CreateAppOptions {
  name?: string;
  tokenRotation?: boolean;
  pkce?: boolean;
  redirectUrls?: string[];
  eventsUrl?: string | null;
  botScopes?: string[];
  userScopes?: string[];
}

export interface InstallOptions {
  clientId: string;
  teamId?: string;
  /** Org-wide install: the team's enterprise is the tenant, `team` is null (§2.3.4). */
  enterpriseInstall?: boolean;
  userId?: string;
  botScopes?: string[];
  userScopes?: string[];
}

/**
 * The `oauth.v2.access` install body (§2.3.3): top-level bot token fields only when bot scopes were
 * granted, `authed_user` token fields only when user scopes were; `expires_in`/`refresh_token` with rotation.
 */
export type InstallResponse = {
  ok: true;
  access_token?: string;
  token_type?: "bot";
  scope?: string;
  bot_user_id?: string;
  app_id: string;
  expires_in?: number;
  refresh_token?: string;
  team: { id: string; name: string } | null;
  enterprise: { id: string; name: string } | null;
  is_enterprise_install: boolean;
  authed_user: {
    id: string;
    scope?: string;
    access_token?: string;
    token_type?: "user";
    expires_in?: number;
    refresh_token?: string;
  };
};

/** The result of authenticating a Web API token (§4.6 steps 4–5). */
export type Authenticated = {
  token: AccessTokenRecord;
  installation: InstallationRecord;
  app: AppRecord;
  scopes: string[];
};

export type TokenState =
  | "active"
  | "expired"
  | "revoked"
  | "uninstalled"
  | "superseded_by_reinstall"
  | "user_deactivated"
  | "in_grace"
  | "used"
  | "superseded_sibling";

export interface TokenInfo {
  kind: "bot" | "user" | "refresh";
  /** For a refresh token: the kind of token it refreshes. */
  tokenKind: TokenKind;
  rotating: boolean;
  state: TokenState;
  /** The error a Web API call (access) or a refresh grant (refresh) would get now; null when usable. */
  error: string | null;
  revokeReason: RevokeReason | null;
  issuedAtMs: number;
  expiresAtMs: number | null;
  appId: string;
  teamId: string | null;
  enterpriseId: string | null;
  userId: string;
  credentialKey: string;
}

export class SlackState {
  readonly apps = new Map<string, AppRecord>(); // by client id
  readonly appsById = new Map<string, AppRecord>();
  readonly teams = new Map<string, TeamRecord>();
  readonly enterprises = new Map<string, EnterpriseRecord>();
  readonly users = new Map<string, UserRecord>();
  /** Each team's users in the order they joined: an install picks the first active one. */
  readonly #usersByTeam = new Map<string, UserRecord[]>();
  readonly installations = new Map<string, InstallationRecord>();
  readonly accessTokens = new Map<string, AccessTokenRecord>();
  readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  readonly codes = new Map<string, AuthCodeRecord>();
  /** Rotating access tokens per credential, oldest first: the 2-active-token limit walks this (§3.4). */
  readonly #rotatingByCredential = new Map<string, string[]>();
  readonly #tokensByInstallation = new Map<string, Set<string>>();

  readonly clock: EmulatorClock;
  readonly knobs: StateKnobs;
  readonly counters: CounterSet;
  readonly #emit: (events: DomainEvent[]) => void;

  constructor(
    clock: EmulatorClock,
    knobs: StateKnobs,
    counters: CounterSet,
    emit: (events: DomainEvent[]) => void,
  ) {
    this.clock = clock;
    this.knobs = knobs;
    this.counters = counters;
    this.#emit = emit;
  }

  // ---- directory ------------------------------------------------------------------------------

  createApp(options: CreateAppOptions = {}): AppRecord {
    const appId = slackId("A");
    const app: AppRecord = {
      appId,
      name: options.name ?? `Emulated App ${appId}`,
      clientId: newClientId(),
      clientSecret: newHexSecret(),
      signingSecret: newHexSecret(),
      verificationToken: newHexSecret().slice(0, 24),
      tokenRotation: options.tokenRotation ?? true,
      pkce: options.pkce ?? false,
      redirectUrls: options.redirectUrls ?? ["http://127.0.0.1"],
      eventsUrl: options.eventsUrl ?? null,
      botScopes: options.botScopes ?? ["chat:write", "channels:read", "users:read"],
      userScopes: options.userScopes ?? [],
    };
    this.apps.set(app.clientId, app);
    this.appsById.set(appId, app);
    return app;
  }

  requireApp(clientId: string): AppRecord {
    const app = this.apps.get(clientId);
    if (app === undefined) throw new Error(`no app with client id ${clientId}`);
    return app;
  }

  /** One-way, like Slack (§3.1): turning rotation off after on throws. */
  setTokenRotation(clientId: string, enabled: boolean): void {
    const app = this.requireApp(clientId);
    if (app.tokenRotation && !enabled) {
      throw new Error("token rotation may not be turned off once it is turned on (slack-api.md §3.1)");
    }
    app.tokenRotation = enabled;
  }

  createTeam(options: { name?: string; enterpriseId?: string; enterpriseName?: string } = {}): TeamRecord {
    const teamId = slackId("T");
    const name = options.name ?? `Workspace ${teamId}`;
    let enterpriseId: string | null = null;
    if (options.enterpriseId !== undefined) {
      enterpriseId = options.enterpriseId;
      if (!this.enterprises.has(enterpriseId)) {
        this.enterprises.set(enterpriseId, {
          enterpriseId,
          name: options.enterpriseName ?? `Org ${enterpriseId}`,
          domain: `org-${enterpriseId.toLowerCase()}`,
        });
      }
    }
    const team: TeamRecord = { teamId, name, domain: `ws-${teamId.toLowerCase()}`, enterpriseId };
    this.teams.set(teamId, team);
    return team;
  }

  createUser(teamId: string, options: { name?: string } = {}): UserRecord {
    if (!this.teams.has(teamId)) throw new Error(`no team ${teamId}`);
    const userId = slackId("U");
    const user: UserRecord = {
      userId,
      teamId,
      name: options.name ?? `user-${userId.toLowerCase()}`,
      deactivated: false,
    };
    this.users.set(userId, user);
    const members = this.#usersByTeam.get(teamId);
    if (members === undefined) this.#usersByTeam.set(teamId, [user]);
    else members.push(user);
    return user;
  }

  deactivateUser(teamId: string, userId: string): void {
    const user = this.users.get(userId);
    if (user === undefined || user.teamId !== teamId) throw new Error(`no user ${userId} in team ${teamId}`);
    user.deactivated = true;
  }

  // ---- OAuth codes (§2.2, §2.3) -----------------------------------------------------------------

  issueCode(code: Omit<AuthCodeRecord, "value" | "createdAtMs" | "used">): string {
    const value = newAuthCode();
    this.codes.set(value, { ...code, value, createdAtMs: this.clock.now(), used: false });
    return value;
  }

  /** A code is valid if known, unused and younger than 10 min; else `invalid_code` (§2.3.5, [U] for reuse). */
  findUsableCode(value: string): AuthCodeRecord | null {
    const code = this.codes.get(value);
    if (code === undefined || code.used) return null;
    if (this.clock.now() >= code.createdAtMs + this.knobs.codeTtlSeconds * 1000) return null;
    return code;
  }

  // ---- installs (§2.3.3, §9 transitions 2 and 7) ------------------------------------------------

  /** Installs (or reinstalls) and returns the `oauth.v2.access` install body (§2.3.3, §2.3.4). */
  install(options: InstallOptions): InstallResponse {
    const app = this.requireApp(options.clientId);
    const team = this.#resolveTeam(options.teamId);
    const userId = options.userId ?? this.#firstUserOf(team.teamId);
    const user = this.users.get(userId);
    if (user === undefined || user.teamId !== team.teamId)
      throw new Error(`no user ${userId} in team ${team.teamId}`);
    const enterpriseInstall = options.enterpriseInstall === true;
    if (enterpriseInstall && team.enterpriseId === null) {
      throw new Error(`team ${team.teamId} belongs to no enterprise: an org-wide install needs one`);
    }
    const botScopes = options.botScopes ?? (options.userScopes === undefined ? app.botScopes : []);
    const userScopes = options.userScopes ?? (options.botScopes === undefined ? app.userScopes : []);
    const installation = this.#upsertInstallation(app, team, enterpriseInstall, userId);
    for (const s of botScopes) installation.botScopes.add(s);
    const ttl = this.knobs.accessTtlSeconds;

    const body: Record<string, unknown> = { ok: true };
    if (botScopes.length > 0) {
      const { access, refresh } = this.#grant(app, installation, "bot", installation.botUserId);
      body["access_token"] = access.value;
      body["token_type"] = "bot"; // not `granular_bot`: every example and SDK says "bot" (§2.3.3)
      body["scope"] = [...installation.botScopes].join(",");
      body["bot_user_id"] = installation.botUserId;
      body["app_id"] = app.appId;
      if (refresh !== null) {
        body["expires_in"] = ttl;
        body["refresh_token"] = refresh.value;
      }
    } else {
      body["app_id"] = app.appId;
    }
    Object.assign(body, this.#tenantFields(installation));
    const authedUser: Record<string, unknown> = { id: userId };
    if (userScopes.length > 0) {
      const granted = installation.userScopes.get(userId) ?? new Set<string>();
      for (const s of userScopes) granted.add(s);
      installation.userScopes.set(userId, granted);
      const { access, refresh } = this.#grant(app, installation, "user", userId);
      authedUser["scope"] = [...granted].join(",");
      authedUser["access_token"] = access.value;
      authedUser["token_type"] = "user";
      if (refresh !== null) {
        authedUser["expires_in"] = ttl;
        authedUser["refresh_token"] = refresh.value;
      }
    }
    body["authed_user"] = authedUser;
    return body as InstallResponse; // built key by key to keep Slack's field order
  }

  #resolveTeam(teamId: string | undefined): TeamRecord {
    if (teamId !== undefined) {
      const team = this.teams.get(teamId);
      if (team === undefined) throw new Error(`no team ${teamId}`);
      return team;
    }
    const first = this.teams.values().next();
    if (first.done === true) throw new Error("no team exists: create one with createTeam()");
    return first.value;
  }

  #firstUserOf(teamId: string): string {
    // Through the team's own list: a scan of every user made installs quadratic (a bench installs 100,000).
    for (const u of this.#usersByTeam.get(teamId) ?? []) if (!u.deactivated) return u.userId;
    return this.createUser(teamId).userId;
  }

  #upsertInstallation(
    app: AppRecord,
    team: TeamRecord,
    enterpriseInstall: boolean,
    installerUserId: string,
  ): InstallationRecord {
    const tenant = enterpriseInstall ? (team.enterpriseId as string) : team.teamId;
    const key = `${app.appId}:${tenant}`;
    const existing = this.installations.get(key);
    if (existing !== undefined) {
      if (existing.uninstalled) {
        // Reinstall after uninstall (§9.7): a new generation; old tokens answer invalid_auth, scopes restart.
        existing.uninstalled = false;
        existing.generation++;
        existing.botScopes.clear();
        existing.userScopes.clear();
        existing.installerUserId = installerUserId;
      }
      return existing;
    }
    const installation: InstallationRecord = {
      key,
      appId: app.appId,
      teamId: enterpriseInstall ? null : team.teamId,
      enterpriseId: team.enterpriseId,
      isEnterpriseInstall: enterpriseInstall,
      botUserId: slackId("U"),
      botId: slackId("B"),
      botScopes: new Set(),
      userScopes: new Map(),
      installerUserId,
      uninstalled: false,
      generation: 1,
    };
    this.installations.set(key, installation);
    this.#tokensByInstallation.set(key, new Set());
    return installation;
  }

  #tenantFields(installation: InstallationRecord): Record<string, unknown> {
    const team = installation.teamId === null ? null : this.teams.get(installation.teamId);
    const enterprise =
      installation.enterpriseId === null ? null : this.enterprises.get(installation.enterpriseId);
    return {
      team: team ? { id: team.teamId, name: team.name } : null,
      enterprise: enterprise ? { id: enterprise.enterpriseId, name: enterprise.name } : null,
      is_enterprise_install: installation.isEnterpriseInstall,
    };
  }

  /**
   * Tokens for one credential at install time. Rotation on: a fresh `xoxe.` pair each time. Rotation off:
   * the credential's live long-lived token is returned again if there is one (whether Slack does so on a
   * reinstall is [U], §10.14), else a new one.
   */
  #grant(
    app: AppRecord,
    installation: InstallationRecord,
    kind: TokenKind,
    userId: string,
  ): { access: AccessTokenRecord; refresh: RefreshTokenRecord | null } {
    const credentialKey = credentialKeyOf(installation, kind, userId);
    if (app.tokenRotation) return this.#mintPair(app, installation, kind, userId, credentialKey, null, null);
    for (const value of this.#tokensByInstallation.get(installation.key) ?? []) {
      const t = this.accessTokens.get(value);
      if (
        t !== undefined &&
        !t.rotating &&
        t.credentialKey === credentialKey &&
        t.generation === installation.generation &&
        t.revoked === null &&
        t.exchangedAtMs === null
      ) {
        return { access: t, refresh: null };
      }
    }
    const access = this.#mintAccess(app, installation, kind, userId, credentialKey, false);
    return { access, refresh: null };
  }

  #mintAccess(
    app: AppRecord,
    installation: InstallationRecord,
    kind: TokenKind,
    userId: string,
    credentialKey: string,
    rotating: boolean,
  ): AccessTokenRecord {
    const now = this.clock.now();
    const value = rotating ? newRotatingAccessToken(kind) : kind === "bot" ? newBotToken() : newUserToken();
    const token: AccessTokenRecord = {
      value,
      kind,
      rotating,
      appId: app.appId,
      installationKey: installation.key,
      generation: installation.generation,
      userId,
      credentialKey,
      issuedAtMs: now,
      expiresAtMs: rotating ? now + this.knobs.accessTtlSeconds * 1000 : null,
      revoked: null,
      exchangedAtMs: null,
    };
    this.accessTokens.set(value, token);
    this.#tokensByInstallation.get(installation.key)?.add(value);
    if (rotating) this.#enforceActiveTokenLimit(credentialKey, value);
    return token;
  }

  /**
   * "If more than 2 tokens exist after the refresh, the oldest additional token will be revoked" (§3.4).
   * A token revoked this way answers `token_revoked` (§3.4: the error is [U]).
   */
  #enforceActiveTokenLimit(credentialKey: string, newest: string): void {
    const now = this.clock.now();
    const live = (this.#rotatingByCredential.get(credentialKey) ?? []).filter((v) => {
      const t = this.accessTokens.get(v);
      return t !== undefined && t.revoked === null && (t.expiresAtMs === null || now < t.expiresAtMs);
    });
    live.push(newest);
    while (live.length > this.knobs.activeTokenLimit) {
      const oldest = live.shift() as string;
      const t = this.accessTokens.get(oldest);
      if (t !== undefined) t.revoked = { atMs: now, reason: "active_token_limit" };
    }
    this.#rotatingByCredential.set(credentialKey, live);
  }

  #mintPair(
    app: AppRecord,
    installation: InstallationRecord,
    kind: TokenKind,
    userId: string,
    credentialKey: string,
    parent: RefreshTokenRecord | null,
    legacyToken: string | null,
  ): { access: AccessTokenRecord; refresh: RefreshTokenRecord } {
    const access = this.#mintAccess(app, installation, kind, userId, credentialKey, true);
    const now = this.clock.now();
    const refresh: RefreshTokenRecord = {
      value: newRefreshToken(),
      kind,
      appId: app.appId,
      installationKey: installation.key,
      generation: installation.generation,
      userId,
      credentialKey,
      issuedAtMs: now,
      parent: parent?.value ?? null,
      latestChild: null,
      firstUsedAtMs: null,
      revokedAtMs: null,
      expiresAtMs: app.pkce ? now + this.knobs.pkceRefreshTtlSeconds * 1000 : null,
      legacyToken,
    };
    this.refreshTokens.set(refresh.value, refresh);
    this.#tokensByInstallation.get(installation.key)?.add(refresh.value);
    if (parent !== null) parent.latestChild = refresh.value;
    return { access, refresh };
  }

  // ---- refresh (§3.3, §3.4, §3.7) ---------------------------------------------------------------

  /** Why a refresh token is refused now, or null if it may be spent. Every refusal is `invalid_refresh_token`. */
  refreshTokenProblem(rt: RefreshTokenRecord): TokenState | null {
    const now = this.clock.now();
    const installation = this.installations.get(rt.installationKey);
    if (installation === undefined || rt.generation < installation.generation)
      return "superseded_by_reinstall";
    if (installation.uninstalled) return "uninstalled";
    if (rt.revokedAtMs !== null) return "revoked";
    if (rt.expiresAtMs !== null && now >= rt.expiresAtMs) return "expired";
    if (rt.parent !== null && this.refreshTokens.get(rt.parent)?.latestChild !== rt.value) {
      // node-slack-sdk#2504: of siblings minted from one parent inside its grace window, only the latest lives.
      return "superseded_sibling";
    }
    if (rt.firstUsedAtMs !== null && now >= rt.firstUsedAtMs + this.knobs.refreshGraceSeconds * 1000)
      return "used";
    return null;
  }

  /** The refresh grant. Refresh after access expiry is allowed (§3.5 default [U]). */
  refresh(app: AppRecord, refreshToken: string): Result<Record<string, unknown>> {
    this.counters.countPresentation(refreshToken);
    const rt = this.refreshTokens.get(refreshToken);
    if (rt === undefined || rt.appId !== app.appId || this.refreshTokenProblem(rt) !== null) {
      this.counters.invalidRefreshTokenAnswers++;
      return fail("invalid_refresh_token"); // never invalid_grant in Slack mode (§3.7)
    }
    const installation = this.installations.get(rt.installationKey) as InstallationRecord;
    const now = this.clock.now();
    rt.firstUsedAtMs ??= now; // the grace window runs from the first use (§3.4)
    if (rt.legacyToken !== null) {
      // "After you refresh your short-lived credentials for the first time, we'll expire your original
      // long-lived access token" (§3.6).
      const legacy = this.accessTokens.get(rt.legacyToken);
      if (legacy !== undefined && legacy.expiresAtMs === null) legacy.expiresAtMs = now;
    }
    const { access, refresh } = this.#mintPair(
      app,
      installation,
      rt.kind,
      rt.userId,
      rt.credentialKey,
      rt,
      null,
    );
    this.counters.countRefresh(rt.credentialKey);
    return { ok: true, value: this.#flatTokenBody(app, installation, access, refresh, true) };
  }

  /** The flat shape of refresh and exchange replies (§3.3, §3.6): no `authed_user`, even for user tokens. */
  #flatTokenBody(
    app: AppRecord,
    installation: InstallationRecord,
    access: AccessTokenRecord,
    refresh: RefreshTokenRecord,
    withEnterpriseFlag: boolean,
  ): Record<string, unknown> {
    const body: Record<string, unknown> = { ok: true, app_id: app.appId };
    if (access.kind === "user") body["user_id"] = access.userId;
    body["scope"] = this.scopesOf(access).join(",");
    body["token_type"] = access.kind;
    body["access_token"] = access.value;
    if (access.kind === "bot") body["bot_user_id"] = installation.botUserId;
    body["refresh_token"] = refresh.value;
    body["expires_in"] = this.knobs.accessTtlSeconds;
    const tenant = this.#tenantFields(installation);
    body["team"] = tenant["team"];
    body["enterprise"] = tenant["enterprise"];
    if (withEnterpriseFlag) body["is_enterprise_install"] = tenant["is_enterprise_install"];
    return body;
  }

  // ---- exchange (§3.6) --------------------------------------------------------------------------

  exchange(app: AppRecord, legacyValue: string): Result<Record<string, unknown>> {
    if (!app.tokenRotation) return fail("token_rotation_not_enabled");
    const legacy = this.accessTokens.get(legacyValue);
    if (legacy === undefined || legacy.appId !== app.appId || legacy.rotating) return fail("invalid_token");
    if (legacy.exchangedAtMs !== null) return fail("token_already_exchanged");
    const installation = this.installations.get(legacy.installationKey) as InstallationRecord;
    if (legacy.generation < installation.generation || installation.uninstalled || legacy.revoked !== null) {
      return fail("authorization_not_found");
    }
    legacy.exchangedAtMs = this.clock.now();
    const { access, refresh } = this.#mintPair(
      app,
      installation,
      legacy.kind,
      legacy.userId,
      legacy.credentialKey,
      null,
      legacy.value,
    );
    return { ok: true, value: this.#flatTokenBody(app, installation, access, refresh, false) };
  }

  // ---- the Web API auth layer (§4.5, §4.6 steps 4–5) --------------------------------------------

  scopesOf(token: AccessTokenRecord): string[] {
    const installation = this.installations.get(token.installationKey);
    if (installation === undefined) return [];
    const set = token.kind === "bot" ? installation.botScopes : installation.userScopes.get(token.userId);
    return set === undefined ? [] : [...set];
  }

  /** Classifies an access token: null when usable, else the state and the error Slack answers. */
  accessTokenProblem(token: AccessTokenRecord): { state: TokenState; error: string } | null {
    const installation = this.installations.get(token.installationKey);
    if (installation === undefined || token.generation < installation.generation) {
      return { state: "superseded_by_reinstall", error: "invalid_auth" }; // bolt-python#1029 (§9.7)
    }
    if (token.expiresAtMs !== null && this.clock.now() >= token.expiresAtMs) {
      return { state: "expired", error: "token_expired" }; // §4.6 step 5 checks expiry first
    }
    if (token.revoked !== null && token.revoked.reason !== "uninstalled") {
      return { state: "revoked", error: "token_revoked" }; // explicit revoke, leak, 2-token limit [U] (§10.2)
    }
    if (installation.uninstalled || token.revoked !== null) {
      // Removed app: bot → account_inactive, user → token_revoked (§4.5, bolt-python#1029).
      return { state: "uninstalled", error: token.kind === "bot" ? "account_inactive" : "token_revoked" };
    }
    if (token.kind === "user" && this.users.get(token.userId)?.deactivated === true) {
      // A deactivated user's token: account_inactive, as widely observed for deleted users [U] (§4.5).
      return { state: "user_deactivated", error: "account_inactive" };
    }
    return null;
  }

  authenticate(value: string): Result<Authenticated> {
    const token = this.accessTokens.get(value);
    if (token === undefined) {
      // A refresh token is not a bearer token for API calls [U].
      return fail(this.refreshTokens.has(value) ? "not_allowed_token_type" : "invalid_auth");
    }
    const problem = this.accessTokenProblem(token);
    if (problem !== null) return fail(problem.error);
    const installation = this.installations.get(token.installationKey) as InstallationRecord;
    const app = this.appsById.get(token.appId) as AppRecord;
    return { ok: true, value: { token, installation, app, scopes: this.scopesOf(token) } };
  }

  // ---- revoke and uninstall (§3.8, §4.3, §4.4, §9 transitions 5–6) ------------------------------

  /**
   * `auth.revoke`. Rotating token (or a refresh token): only that token, no events (§3.8, bolt-js#1965).
   * Long-lived token: revoked, `tokens_revoked` sent, and when it was the installation's last live token
   * the app is uninstalled and `app_uninstalled` follows (§4.3).
   */
  revokeByOwner(value: string): void {
    const now = this.clock.now();
    if (this.#revokeIfRefreshToken(value, now)) return;
    const token = this.accessTokens.get(value);
    if (token === undefined || token.revoked !== null) return;
    token.revoked = { atMs: now, reason: "auth_revoke" };
    if (token.rotating) return;
    const installation = this.installations.get(token.installationKey) as InstallationRecord;
    const events: DomainEvent[] = [
      {
        type: "tokens_revoked",
        appId: token.appId,
        installation,
        tokens:
          token.kind === "bot" ? { oauth: [], bot: [token.userId] } : { oauth: [token.userId], bot: [] },
      },
    ];
    if (this.#liveTokensOf(installation).length === 0) {
      this.#markUninstalled(installation);
      events.push({ type: "app_uninstalled", appId: token.appId, installation });
    }
    this.#emit(events);
  }

  /** Control-side revoke: the token answers `token_revoked`, nothing else changes, no events. */
  revokeQuietly(value: string, reason: RevokeReason): void {
    const now = this.clock.now();
    if (this.#revokeIfRefreshToken(value, now)) return;
    const token = this.accessTokens.get(value);
    if (token === undefined) throw new Error("unknown token");
    token.revoked ??= { atMs: now, reason };
  }

  /** A refresh token is revoked alone, whoever asks (the first revocation's time stays). */
  #revokeIfRefreshToken(value: string, now: number): boolean {
    const rt = this.refreshTokens.get(value);
    if (rt === undefined) return false;
    rt.revokedAtMs ??= now;
    return true;
  }

  #liveTokensOf(installation: InstallationRecord): AccessTokenRecord[] {
    const live: AccessTokenRecord[] = [];
    for (const value of this.#tokensByInstallation.get(installation.key) ?? []) {
      const t = this.accessTokens.get(value);
      if (
        t !== undefined &&
        t.generation === installation.generation &&
        this.accessTokenProblem(t) === null
      ) {
        live.push(t);
      }
    }
    return live;
  }

  /** Revokes every token of the installation (§4.4) and reports whose tokens died (§6.3). */
  #markUninstalled(installation: InstallationRecord): { oauth: string[]; bot: string[] } {
    const now = this.clock.now();
    const oauth = new Set<string>();
    const bot = new Set<string>();
    for (const value of this.#tokensByInstallation.get(installation.key) ?? []) {
      const t = this.accessTokens.get(value);
      if (t !== undefined && t.generation === installation.generation) {
        if (this.accessTokenProblem(t) === null) (t.kind === "bot" ? bot : oauth).add(t.userId);
        t.revoked ??= { atMs: now, reason: "uninstalled" };
      }
      const rt = this.refreshTokens.get(value);
      if (rt !== undefined && rt.generation === installation.generation) {
        // A rotating credential whose access token expired still lives through its refresh token
        // (§3.5); the uninstall kills it too (§4.4), so tokens_revoked names it (§6.3).
        const deactivated = rt.kind === "user" && this.users.get(rt.userId)?.deactivated === true;
        if (!deactivated && this.refreshTokenProblem(rt) === null)
          (rt.kind === "bot" ? bot : oauth).add(rt.userId);
        rt.revokedAtMs ??= now;
      }
    }
    installation.uninstalled = true;
    return { oauth: [...oauth], bot: [...bot] };
  }

  /** `apps.uninstall` or removal in the UI: all tokens die; `tokens_revoked` then `app_uninstalled` (§9.6). */
  uninstall(installation: InstallationRecord): void {
    if (installation.uninstalled) return;
    const tokens = this.#markUninstalled(installation);
    this.#emit([
      { type: "tokens_revoked", appId: installation.appId, installation, tokens },
      { type: "app_uninstalled", appId: installation.appId, installation },
    ]);
  }

  findInstallation(clientId: string, teamOrEnterpriseId: string): InstallationRecord {
    const app = this.requireApp(clientId);
    const installation = this.installations.get(`${app.appId}:${teamOrEnterpriseId}`);
    if (installation === undefined)
      throw new Error(`app ${app.appId} is not installed on ${teamOrEnterpriseId}`);
    return installation;
  }

  // ---- assertions -------------------------------------------------------------------------------

  tokenInfo(value: string): TokenInfo {
    const access = this.accessTokens.get(value);
    if (access !== undefined) {
      const installation = this.installations.get(access.installationKey) as InstallationRecord;
      const problem = this.accessTokenProblem(access);
      return {
        kind: access.kind,
        tokenKind: access.kind,
        rotating: access.rotating,
        state: problem?.state ?? "active",
        error: problem?.error ?? null,
        revokeReason: access.revoked?.reason ?? null,
        issuedAtMs: access.issuedAtMs,
        expiresAtMs: access.expiresAtMs,
        appId: access.appId,
        teamId: installation.teamId,
        enterpriseId: installation.enterpriseId,
        userId: access.userId,
        credentialKey: access.credentialKey,
      };
    }
    const rt = this.refreshTokens.get(value);
    if (rt === undefined) throw new Error("unknown token");
    const installation = this.installations.get(rt.installationKey) as InstallationRecord;
    const problem = this.refreshTokenProblem(rt);
    return {
      kind: "refresh",
      tokenKind: rt.kind,
      rotating: true,
      state: problem ?? (rt.firstUsedAtMs === null ? "active" : "in_grace"),
      error: problem === null ? null : "invalid_refresh_token",
      revokeReason: null,
      issuedAtMs: rt.issuedAtMs,
      expiresAtMs: rt.expiresAtMs,
      appId: rt.appId,
      teamId: installation.teamId,
      enterpriseId: installation.enterpriseId,
      userId: rt.userId,
      credentialKey: rt.credentialKey,
    };
  }
}

export function credentialKeyOf(installation: InstallationRecord, kind: TokenKind, userId: string): string {
  return kind === "bot" ? `${installation.key}:bot` : `${installation.key}:user:${userId}`;
}
