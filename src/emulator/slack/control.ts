// The control API: what a test (or a benchmark in another process, via control-routes.ts) uses to set
// the emulated Slack up, move its clock, inject faults and read its counters.
import type { AuthorizeSettings, EmulatorContext } from "./context.js";
import type { EmulatorCounters, EmulatorCounterTotals } from "./counters.js";
import type { Delivery } from "./events.js";
import type { FaultKind, FaultSpec } from "./faults.js";
import type { AppRecord } from "./model.js";
import type { CreateAppOptions, InstallOptions, InstallResponse, TokenInfo } from "./state.js";

/** The secrets a client of the app needs. */
export interface AppCredentials {
  appId: string;
  clientId: string;
  clientSecret: string;
  signingSecret: string;
}

export interface TeamInfo {
  teamId: string;
  name: string;
  enterpriseId: string | null;
}

export interface SlackEmulatorControl {
  /** A new app; token rotation on unless `tokenRotation: false`; redirect URL `http://127.0.0.1` by default. */
  createApp(options?: CreateAppOptions): AppCredentials;
  /** One-way (§3.1): `false` after `true` throws. */
  setTokenRotation(clientId: string, enabled: boolean): void;
  /** Sets (or clears) the URL the app's events go to. */
  setEventsUrl(clientId: string, url: string | null): void;
  /** A workspace; with `enterpriseId` it belongs to that (auto-created) Enterprise Grid org. */
  createTeam(options?: { name?: string; enterpriseId?: string; enterpriseName?: string }): TeamInfo;
  createUser(teamId: string, options?: { name?: string }): { userId: string };
  /** Installs without a browser and returns the exact `oauth.v2.access` install body. */
  install(options: InstallOptions): InstallResponse;
  /** The same as `install`; after `uninstall` it starts a new generation (old tokens → `invalid_auth`). */
  reinstall(options: InstallOptions): InstallResponse;
  /** Uninstalls the app from a workspace (or org: pass the enterprise id): all tokens die, events follow. */
  uninstall(options: { clientId: string; teamId: string }): void;
  advance(seconds: number): number;
  now(): number;
  /** Revokes like `auth.revoke` by the token's owner (events for long-lived tokens, §4.3). */
  revokeToken(token: string): void;
  /** Slack's secret scanning found the token: it is revoked quietly and answers `token_revoked`. */
  leakToken(token: string): void;
  deactivateUser(teamId: string, userId: string): void;
  /** Per-minute limit for a method on the emulator clock; null removes it. */
  setRateLimit(method: string, perMinute: number | null): void;
  /** Queues a fault for the next `times` calls of `method` (`*` = any method). */
  fault(method: string, spec: FaultSpec): void;
  clearFaults(): void;
  setLatency(ms: number, method?: string): void;
  /** How `/oauth/v2/authorize` behaves: consent page, auto-approve or auto-deny; which team and user. */
  setAuthorize(settings: Partial<AuthorizeSettings>): AuthorizeSettings;
  /** Sends a signed `url_verification` and says whether the challenge came back. */
  verifyEventsUrl(
    clientId: string,
    url?: string,
  ): Promise<{ ok: boolean; status: number | null; challenge: string }>;
  deliveries(): Delivery[];
  /** Resolves when every pending event delivery (with its retries) is done; returns all deliveries. */
  flushEvents(): Promise<Delivery[]>;
  counters(): EmulatorCounters;
  /** The counters without their per-token maps, for polling during a long run. */
  counterTotals(): EmulatorCounterTotals;
  resetCounters(): void;
  tokenInfo(token: string): TokenInfo;
}

export function credentialsOf(app: AppRecord): AppCredentials {
  return {
    appId: app.appId,
    clientId: app.clientId,
    clientSecret: app.clientSecret,
    signingSecret: app.signingSecret,
  };
}

const FAULT_KIND_SET = new Set<FaultKind>([
  "error",
  "fatal_error",
  "http_500",
  "hang",
  "internal_error",
  "lost_response",
  "ratelimited",
]);

export function createControl(ctx: EmulatorContext): SlackEmulatorControl {
  const { state } = ctx;
  return {
    createApp: (options = {}) => credentialsOf(state.createApp(options)),
    setTokenRotation: (clientId, enabled) => state.setTokenRotation(clientId, enabled),
    setEventsUrl(clientId, url) {
      state.requireApp(clientId).eventsUrl = url;
    },
    createTeam(options = {}) {
      const team = state.createTeam(options);
      return { teamId: team.teamId, name: team.name, enterpriseId: team.enterpriseId };
    },
    createUser: (teamId, options = {}) => ({ userId: state.createUser(teamId, options).userId }),
    install: (options) => state.install(options),
    reinstall: (options) => state.install(options),
    uninstall({ clientId, teamId }) {
      state.uninstall(state.findInstallation(clientId, teamId));
    },
    advance(seconds) {
      ctx.clock.advance(seconds);
      return ctx.clock.now();
    },
    now: () => ctx.clock.now(),
    revokeToken(token) {
      if (!state.accessTokens.has(token) && !state.refreshTokens.has(token)) throw new Error("unknown token");
      state.revokeByOwner(token);
    },
    leakToken: (token) => state.revokeQuietly(token, "leaked"),
    deactivateUser: (teamId, userId) => state.deactivateUser(teamId, userId),
    setRateLimit: (method, perMinute) => ctx.faults.setRateLimit(method, perMinute),
    fault(method, spec) {
      if (!FAULT_KIND_SET.has(spec.kind)) throw new Error(`unknown fault kind ${String(spec.kind)}`);
      ctx.faults.add(method, spec);
    },
    clearFaults: () => ctx.faults.clearFaults(),
    setLatency: (ms, method) => ctx.faults.setLatency(ms, method),
    setAuthorize(settings) {
      if (settings.mode !== undefined && !["consent", "approve", "deny"].includes(settings.mode)) {
        throw new Error(`mode must be consent, approve or deny`);
      }
      Object.assign(ctx.authorize, settings);
      return { ...ctx.authorize };
    },
    async verifyEventsUrl(clientId, url) {
      const app = state.requireApp(clientId);
      // The URL deliveries would use, so a check passes exactly when events would arrive.
      const target = url ?? ctx.events.urlFor(app);
      if (target === null)
        throw new Error("no events URL: pass one, set it on the app, or start the emulator with one");
      return ctx.events.verifyUrl(app, target);
    },
    deliveries: () => ctx.events.deliveries.slice(),
    async flushEvents() {
      await ctx.events.flush();
      return ctx.events.deliveries.slice();
    },
    counters: () => ctx.counters.snapshot(),
    counterTotals: () => ctx.counters.totals(),
    resetCounters: () => ctx.counters.reset(),
    tokenInfo: (token) => state.tokenInfo(token),
  };
}
