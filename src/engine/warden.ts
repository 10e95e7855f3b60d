import { hostname } from "node:os";
import { checkPlainHttpUrl } from "../config.js";
import { NeedsReauthError, ProviderUnavailableError, TokenwardenError } from "../core/errors.js";
import type { Clock, Logger, Provider, Random, Store } from "../core/ports.js";
import { reconnectUrlOf } from "../core/reconnect-url.js";
import { DEFAULT_REFRESH_POLICY, type RefreshPolicy } from "../core/refresh-policy.js";
import type { CredentialKind, ProviderState } from "../core/types.js";
import { type EncryptionKey, parseKeyRing } from "../crypto/key-ring.js";
import { ReconnectLinkSigner } from "../crypto/reconnect-link.js";
import { createSlackProvider } from "../providers/slack/slack-provider.js";
import { ChangeFeedWatch } from "./change-feed-watch.js";
import { checkConnection, markDead } from "./check.js";
import { ClaimKeeper } from "./claim-keeper.js";
import { CompletionBatcher } from "./completion-batcher.js";
import { makeConnections } from "./connections.js";
import {
  type EngineContext,
  type EngineTimings,
  type RefreshObservation,
  resolveTimings,
} from "./context.js";
import { cryptoRandom } from "./crypto-random.js";
import { DatabaseAlignedClock } from "./database-clock.js";
import { defaultLogger } from "./default-logger.js";
import { makeGetToken } from "./get-token.js";
import { openKeyedStore } from "./open-keyed-store.js";
import { flagApplies, syncProviderFlags } from "./provider-flags.js";
import { syncProviderPauses } from "./provider-pauses.js";
import { pruneEventsInBatches } from "./prune-events.js";
import { refreshCredential } from "./refresh.js";
import { checkRefresherOptions, Refresher, type RefresherOptions } from "./refresher.js";
import { RefusalHeartbeat } from "./refusal-heartbeat.js";
import { rotateAllKeys } from "./rotate-keys.js";
import { steadyClock } from "./steady-clock.js";
import { systemClock } from "./system-clock.js";
import { TokenCache } from "./token-cache.js";
import { WardenEvents } from "./warden-events.js";
import { makeWithToken } from "./with-token.js";

export interface SlackProviderOptions {
  clientId: string;
  clientSecret: string;
  signingSecret?: string;
  /** Slack's origin; `/api/*` and `/oauth/v2/authorize` live below it. Point it at the emulator in tests. */
  baseUrl?: string;
}

/** `warden.providerState()`: the stored state, every field present, and whether it concerns this warden. */
export type WardenProviderState = Required<ProviderState> & { appliesHere: boolean };

/** `warden.refreshBacklog()`: one provider's refreshes that are due and not yet done. */
export interface RefreshBacklogReport {
  provider: string;
  /** How many, counting at most REFRESH_BACKLOG_CAP. */
  due: number;
  /** When the most overdue of them was due; null when none is. */
  oldestDueAt: Date | null;
  /** How long it has waited past that, in seconds (0 when none is due). */
  lagSeconds: number;
}

/** Where refreshBacklog stops counting: past it the refresher is far behind, and a count costs more. */
export const REFRESH_BACKLOG_CAP = 10_000;

export interface WardenOptions {
  /** `sqlite:PATH` or `postgres://…`; default `TOKENWARDEN_DATABASE_URL`, else `sqlite:./tokenwarden.db`. */
  database?: string;
  /** Base64 of 32 bytes, or `id1:key1,id2:key2` (first encrypts); default `TOKENWARDEN_ENCRYPTION_KEY`. */
  encryptionKey?: string;
  providers?: { slack?: SlackProviderOptions };
  /** Where this warden's server is reachable; reconnect links are built on it. */
  publicUrl?: string;
  /**
   * Signs the reconnect links this warden hands out, so the server's install route may preselect the
   * workspace and say when a connection was deleted. Default: derived from the encryption key (the
   * one the warden opens its own store with, or `encryptionKey` given beside a `store`); with `store`
   * and no `encryptionKey`, links go out bare (they reconnect all the same). The server and the CLI
   * pass the one of the key ring they opened the store with.
   */
  reconnectLinks?: ReconnectLinkSigner;
  /** Where a development key is kept when no key is configured outside production. */
  devKeyPath?: string;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  fetch?: typeof globalThis.fetch;
  /** Use this store instead of opening `database` (it is closed with the warden, or if creating it fails). */
  store?: Store;
  /**
   * `shared` (the default): a provider flagged `misconfigured` (its client credentials refused) is
   * recorded in the store, announced by webhook, and honoured by every instance on it. `local`: kept
   * in this process only, neither read from nor written to the store. The CLI runs local, so a
   * one-off command with a mistyped secret cannot pause the servers' refreshes or page anyone.
   */
  providerState?: "shared" | "local";
  /** Extra providers by id (a custom Provider implementation). */
  extraProviders?: Provider[];
  policy?: Partial<RefreshPolicy>;
  timings?: Partial<EngineTimings>;
  /** Environment to read defaults from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Write outgoing webhooks to the store's outbox with the changes that cause them (the server
   * delivers them). Default: on when `TOKENWARDEN_WEBHOOK_URL` is set. Ignored with `store`.
   */
  webhooks?: boolean;
  /** Told of every refresh grant sent to a provider (outcome, latency): for metrics. */
  onRefresh?: (observation: RefreshObservation) => void;
}

/**
 * Creates a warden: opens (and migrates) the store, sets up encryption and
 * providers. Call `close()` when done.
 *
 * @example
 * const warden = await createWarden({
 *   database: "sqlite:./tokenwarden.db",
 *   encryptionKey: process.env.TOKENWARDEN_ENCRYPTION_KEY,
 *   providers: { slack: { clientId, clientSecret } },
 * });
 * const { accessToken } = await warden.getToken("T123", { kind: "bot", minTtlSeconds: 60 });
 */
export async function createWarden(options: WardenOptions = {}) {
  const env = options.env ?? process.env;
  const logger = options.logger ?? defaultLogger(env);
  // Whole milliseconds, whatever the clock given (one built on performance.now() has fractions): the
  // stores keep instants as integers, and a fraction would make every write refuse.
  const given = options.clock;
  const hostClock: Clock =
    given === undefined
      ? systemClock
      : {
          now: () => Math.floor(given.now()),
          ...(given.elapsedMs === undefined ? {} : { elapsedMs: given.elapsedMs.bind(given) }),
        };
  // Read off the database's clock where hosts share it (aligned once the store is open).
  let store = options.store;
  const clock = new DatabaseAlignedClock(hostClock, async () => store?.clockOffsetMs?.(), logger);
  // Before anything opens: a bad timing is refused with nothing to close.
  const timings = resolveTimings(options.timings);
  const random = options.random ?? cryptoRandom;
  const database = options.database ?? env["TOKENWARDEN_DATABASE_URL"] ?? "sqlite:./tokenwarden.db";

  const providers = new Map<string, Provider>();
  const slack = options.providers?.slack ?? slackFromEnv(env);
  const publicUrl = options.publicUrl ?? env["TOKENWARDEN_PUBLIC_URL"];
  // Before anything opens, as the server's configuration does: a public URL with a password would be
  // copied into every reconnect link, and fetch refuses a Slack origin that holds one.
  checkPlainHttpUrl(publicUrl, options.publicUrl === undefined ? "TOKENWARDEN_PUBLIC_URL" : "publicUrl");
  checkPlainHttpUrl(
    slack === undefined ? undefined : (slack.baseUrl ?? env["SLACK_BASE_URL"]),
    options.providers?.slack?.baseUrl === undefined ? "SLACK_BASE_URL" : "providers.slack.baseUrl",
  );
  if (slack) {
    providers.set(
      "slack",
      createSlackProvider({
        clientId: slack.clientId,
        clientSecret: slack.clientSecret,
        baseUrl: slack.baseUrl ?? env["SLACK_BASE_URL"] ?? "https://slack.com",
        clock,
        ...(options.fetch ? { fetch: options.fetch } : {}),
      }),
    );
  }
  for (const provider of options.extraProviders ?? []) providers.set(provider.id, provider);

  let reconnectLinks = options.reconnectLinks ?? null;
  if (store === undefined) {
    let keys: EncryptionKey[];
    ({ store, keys } = await openKeyedStore(
      {
        database,
        encryptionKey: options.encryptionKey ?? env["TOKENWARDEN_ENCRYPTION_KEY"],
        nodeEnv: env["NODE_ENV"],
        ...(options.devKeyPath ? { devKeyPath: options.devKeyPath } : {}),
        onDevKeyCreated: (path) =>
          logger.warn(
            { path },
            "no TOKENWARDEN_ENCRYPTION_KEY: generated a development key file; set the variable in production",
          ),
      },
      { outbox: options.webhooks ?? Boolean(env["TOKENWARDEN_WEBHOOK_URL"]) },
    ));
    reconnectLinks ??= ReconnectLinkSigner.fromKeyRing(keys);
  } else if (reconnectLinks === null && options.encryptionKey !== undefined) {
    // A store of the caller's own: the key ring given beside it signs links as the server's does.
    reconnectLinks = ReconnectLinkSigner.fromKeyRing(parseKeyRing(options.encryptionKey));
  }
  const signLink = reconnectLinks === null ? null : reconnectLinks.sign.bind(reconnectLinks);
  try {
    await store.migrate();
    const newer = (await store.newerMigrations?.()) ?? [];
    if (newer.length > 0) {
      // A rollback, or an old instance restarted mid-deploy: refusing would take the fleet down with
      // it, but the operator must hear that this release may not keep what those migrations changed.
      logger.warn(
        { migrations: newer },
        "the database has migrations this release does not know (a newer release applied them): run that release or a newer one; this one may write what they changed the old way",
      );
    }
    // Before anything is written: a wrong key would seal new rows no correctly keyed instance can open.
    await store.checkKeyRing();
  } catch (error) {
    // Ours either way (a given store is closed with the warden): a refused start (a wrong key) must
    // let the process exit, and PostgreSQL's pool and LISTEN client would keep it up.
    await store.close().catch(() => {});
    throw error;
  }

  const openStoreRef = store;
  const events = new WardenEvents(logger);
  if (timings.leaseMs <= timings.providerTimeoutMs) {
    // Allowed (a live holder renews its lease), but the guarantee after a crash is weaker: say so once.
    logger.warn(
      { leaseMs: timings.leaseMs, providerTimeoutMs: timings.providerTimeoutMs },
      "timings.leaseMs is not longer than timings.providerTimeoutMs: a claim whose holder dies mid-call can be taken over while its request may still reach the provider, leaving the stored refresh token superseded",
    );
  }
  await clock.align();
  if (store.clockOffsetMs !== undefined) clock.start();
  const leaseWindow = () => clock.lease(timings.leaseMs);
  const ctx: EngineContext = {
    store,
    providers,
    clock,
    // Off the host's clock: a re-measured offset moves `now()`, never the process's own schedules.
    steadyNow: steadyClock(hostClock),
    leaseWindow,
    random,
    logger,
    policy: { ...DEFAULT_REFRESH_POLICY, ...options.policy },
    timings,
    owner: `${hostname()}:${process.pid}:${random.token(6)}`,
    events,
    cache: new TokenCache(),
    claims: new ClaimKeeper(
      timings.leaseMs,
      (claim) => {
        const lease = leaseWindow();
        return openStoreRef.renewClaim(claim, lease.nowMs, lease.leaseMs);
      },
      logger,
    ),
    completions: new CompletionBatcher(store),
    flaggedProviders: new Map(),
    refusedHere: new Map(),
    sharedProviderState: (options.providerState ?? "shared") === "shared",
    providerProbeAtMs: new Map(),
    refresherProbeAtMs: new Map(),
    outageEndedAtMs: new Map(),
    providerPausedUntil: new Map(),
    onRefresh: options.onRefresh,
    reconnectUrl: (connectionId, provider) =>
      publicUrl ? reconnectUrlOf(publicUrl, provider, connectionId, signLink) : null,
  };
  try {
    await syncProviderFlags(ctx);
    await syncProviderPauses(ctx);
  } catch (error) {
    // A refused start closes what it opened, as above: the store's pool would keep the process up.
    clock.stop();
    await store.close().catch(() => {});
    throw error;
  }

  const tokens = makeGetToken(ctx);
  const base = makeConnections(ctx, tokens.forget);
  let refresher: Refresher | null = null;
  const heartbeat = new RefusalHeartbeat(ctx);
  heartbeat.start();
  const changeFeed = new ChangeFeedWatch(ctx);
  changeFeed.start();

  const connections = {
    ...base,
    /** Forces a refresh now of one credential (or all of the connection's), ignoring backoff. */
    async refresh(connectionId: string, options: { kind?: CredentialKind } = {}) {
      const connection = await base.get(connectionId);
      const kinds = options.kind
        ? [options.kind]
        : connection.credentials.filter((c) => c.hasRefreshToken).map((c) => c.kind);
      const results = [];
      for (const kind of kinds) {
        const summary = connection.credentials.find((c) => c.kind === kind);
        if (summary !== undefined && !summary.hasRefreshToken && summary.status !== "needs_reauth") {
          // Nothing to send: saying "refreshed" would claim a new token that was never asked for.
          results.push({
            kind,
            refreshed: false,
            error: "no_refresh_token",
            expiresAt: summary.expiresAtMs === null ? null : new Date(summary.expiresAtMs),
          });
          continue;
        }
        let r: Awaited<ReturnType<typeof refreshCredential>>;
        try {
          r = await refreshCredential(
            ctx,
            { connectionId, kind },
            { freshUntilMs: Number.MAX_SAFE_INTEGER, ignoreBackoff: true },
          );
        } catch (error) {
          // A credential's own outcome (dead, an outage) thrown because its token has expired is still
          // this credential's row: a throw would lose the rows of the credentials refreshed and stored
          // before it. Anything else (the store, an unknown id, the provider) throws.
          if (!isRefreshOutcome(error)) throw error;
          const stored = (await base.get(connectionId)).credentials.find((c) => c.kind === kind);
          results.push({
            kind,
            refreshed: false,
            // What this attempt met: the provider's error when it got one (an outage, a pause), the
            // answer that killed the credential (this attempt's or the one before it), else why not.
            error:
              error instanceof NeedsReauthError
                ? (stored?.lastError ?? error.reason)
                : (error.providerError ?? error.reason),
            expiresAt:
              stored === undefined || stored.expiresAtMs === null ? null : new Date(stored.expiresAtMs),
          });
          continue;
        }
        results.push({
          kind,
          refreshed: r.failure === undefined,
          error: r.failure?.error ?? null,
          expiresAt: r.tokens.expiresAtMs === null ? null : new Date(r.tokens.expiresAtMs),
        });
      }
      return results;
    },
    /** Health check now (Slack: `auth.test`), acting on the answer. */
    check: (connectionId: string) => checkConnection(ctx, connectionId),
  };

  return {
    getToken: tokens.getToken,
    /**
     * getToken's memory-only half, synchronous: the token when no store read and
     * no refresh is needed, else null (then call getToken). For hot paths that
     * want to skip a promise; never stale by more than getToken itself.
     */
    cachedToken: tokens.cachedToken,
    withToken: makeWithToken(ctx, tokens.getToken),
    connections,
    on: events.on.bind(events),
    off: events.off.bind(events),
    /**
     * Starts the background refresher in this process (idempotent). An interval or a concurrency it
     * could not run on (0, negative, NaN, a fraction) throws `config_invalid`.
     */
    startRefresher(refresherOptions: RefresherOptions | null = {}): void {
      // A JavaScript caller's null means no options, as undefined does.
      const given = refresherOptions ?? {};
      // Also when one already runs: a call whose options would be refused must not look accepted.
      checkRefresherOptions(given);
      refresher ??= new Refresher(ctx, given);
      refresher.start();
    },
    async stopRefresher(): Promise<void> {
      await refresher?.stop();
    },
    /** One refresher pass now, waiting for the refreshes it started: handy in tests and cron jobs. */
    async refreshDue(): Promise<number> {
      const r = new Refresher(ctx);
      const started = await r.tick();
      await r.idle();
      return started;
    },
    /**
     * Marks credentials dead after an outside signal (Slack `app_uninstalled` / `tokens_revoked`).
     * With `happenedAt`, the signal's own time, a credential issued at or after it is left alone:
     * the signal is about the tokens it replaced (a late or retried event after a reconnect). That is
     * decided under the store's row lock, so a refresh committing meanwhile is judged by its own issue
     * time. Returns the kinds it changed; throws `not_found` when the connection is gone.
     */
    async markNeedsReauth(
      connectionId: string,
      kinds: CredentialKind[] | "all",
      reason: "app_uninstalled" | "token_revoked" | "account_inactive" | "invalid_auth",
      options: { happenedAt?: Date | number } = {},
    ): Promise<CredentialKind[]> {
      const happenedAtMs =
        options.happenedAt instanceof Date ? options.happenedAt.getTime() : options.happenedAt;
      if (happenedAtMs !== undefined && !Number.isFinite(happenedAtMs))
        throw new TokenwardenError("invalid_input", "happenedAt must be a valid Date or epoch milliseconds");
      const eventType = reason === "app_uninstalled" ? "uninstalled" : "revoked";
      return markDead(
        ctx,
        connectionId,
        kinds,
        reason,
        reason,
        eventType,
        happenedAtMs === undefined ? {} : { ifIssuedBeforeMs: happenedAtMs },
      );
    },
    /**
     * Re-encrypts every secret under the first key, in batches, while the warden keeps serving.
     * Returns how many credentials it re-sealed. Credentials whose values do not open with the ring
     * are left as they are and the rest re-sealed all the same; then it throws `config_invalid`
     * naming them (by connection, kind and key id), since the old key cannot be retired yet.
     */
    async rotateKeys(
      options: { batchSize?: number; onProgress?: (done: number) => void } = {},
    ): Promise<number> {
      return rotateAllKeys(openStoreRef, options.batchSize ?? 200, options.onProgress);
    },
    /**
     * Deletes events recorded before `before`, in batches (each its own short transaction, so
     * refreshes keep committing meanwhile). Returns how many. `serve` runs this hourly with
     * TOKENWARDEN_EVENT_RETENTION_DAYS; a library user schedules it as they like.
     */
    async pruneEvents(options: { before: Date; batchSize?: number }): Promise<number> {
      const beforeMs = options.before.getTime();
      if (!Number.isFinite(beforeMs))
        throw new TokenwardenError("invalid_input", "pruneEvents: before must be a valid Date");
      return pruneEventsInBatches(openStoreRef, beforeMs, { batchSize: options.batchSize ?? 1_000 });
    },
    /**
     * The provider's shared state, and whether it concerns this warden (`appliesHere`): this warden
     * was refused itself, or the flag names its client credentials, or names none. A flag of other
     * credentials (a process still on an old secret) is `misconfigured` in the store but says nothing
     * of a warden whose own credentials work. (A `local` warden never holds back on the shared flag,
     * but one that concerns it is still its problem: `diagnose connection` reads it so.)
     */
    async providerState(provider: string): Promise<WardenProviderState> {
      const configured = providers.get(provider);
      if (configured === undefined)
        throw new TokenwardenError("not_found", `provider "${provider}" is not configured`);
      const stored = await openStoreRef.getProviderState(provider);
      // A process refused itself is flagged too (holdBack), until its own probe succeeds.
      const appliesHere = ctx.flaggedProviders.has(provider) || flagApplies(stored, configured);
      return {
        provider,
        status: stored?.status ?? "ok",
        reason: stored?.reason ?? null,
        lastError: stored?.lastError ?? null,
        sinceMs: stored?.sinceMs ?? 0,
        clientFingerprint: stored?.clientFingerprint ?? null,
        assertedAtMs: stored?.assertedAtMs ?? null,
        appliesHere,
      };
    },
    /** The providers configured here, by id (`slack`, …). */
    providers: [...providers.keys()] as readonly string[],
    /**
     * Per provider configured here, the refreshes due now and not yet done (in flight included, across
     * every process sharing the store), and how overdue the oldest is: a lag that keeps growing means
     * the refreshers are not keeping up (none running, the provider paused or failing, too little
     * concurrency), and tokens will expire before they are refreshed. Two indexed reads per provider.
     */
    async refreshBacklog(): Promise<RefreshBacklogReport[]> {
      const nowMs = clock.now();
      return Promise.all(
        [...providers.keys()].map(async (provider) => {
          const b = await openStoreRef.refreshBacklog(provider, nowMs, REFRESH_BACKLOG_CAP);
          return {
            provider,
            due: b.due,
            oldestDueAt: b.oldestDueAtMs === null ? null : new Date(b.oldestDueAtMs),
            lagSeconds: b.oldestDueAtMs === null ? 0 : Math.max(0, nowMs - b.oldestDueAtMs) / 1000,
          };
        }),
      );
    },
    /**
     * The clock this warden dates stored instants by: the one given (or the system's), plus the host's
     * offset from the database's clock on PostgreSQL (see DatabaseAlignedClock). What to compare a
     * stored instant with (`diagnose` does).
     */
    clock: clock as Clock,
    /** Cache counters of the token hot path. */
    stats: () => ctx.cache.stats(),
    /**
     * Stops the refresher and waits for every refresh in flight (background or on demand) to store
     * its outcome, at most `timeoutMs` (default: a provider timeout and 5 s more), then closes the
     * store. A refresh cut off keeps its journal: the next attempt recovers it.
     */
    async close(options: { timeoutMs?: number } = {}): Promise<void> {
      const deadline = performance.now() + (options.timeoutMs ?? timings.providerTimeoutMs + 5_000);
      changeFeed.stop();
      await heartbeat.stop(deadline - performance.now());
      await refresher?.stop(Math.max(0, deadline - performance.now()));
      if (!(await ctx.claims.settled(Math.max(0, deadline - performance.now())))) {
        logger.warn(
          { inFlight: ctx.claims.size },
          "closing with refreshes still in flight; their claims lapse and the next attempt recovers them",
        );
      }
      clock.stop();
      await openStoreRef.close();
    },
  };
}

export type Warden = Awaited<ReturnType<typeof createWarden>>;

function slackFromEnv(env: NodeJS.ProcessEnv): SlackProviderOptions | undefined {
  const clientId = env["SLACK_CLIENT_ID"];
  const clientSecret = env["SLACK_CLIENT_SECRET"];
  if (!clientId || !clientSecret) return undefined;
  const signingSecret = env["SLACK_SIGNING_SECRET"];
  const baseUrl = env["SLACK_BASE_URL"];
  return {
    clientId,
    clientSecret,
    ...(signingSecret ? { signingSecret } : {}),
    ...(baseUrl ? { baseUrl } : {}),
  };
}

/**
 * An error that tells what became of a credential's refresh (dead, or an outage), not that it could
 * not be tried: `provider_misconfigured` (the provider is not configured here, or is flagged) is about
 * every credential of the provider, and still throws.
 */
function isRefreshOutcome(error: unknown): error is NeedsReauthError | ProviderUnavailableError {
  return error instanceof NeedsReauthError || error instanceof ProviderUnavailableError;
}
