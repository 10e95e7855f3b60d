/**
 * `diagnose connection <id>`: what happened to a stored connection and when,
 * read from its status and event log (no network call), as a Diagnosis plus a
 * timeline a person can follow. Pure: the caller reads the store.
 */

import { STALE_FLAG_MS } from "../core/provider-flag-times.js";
import type {
  Connection,
  CredentialKind,
  CredentialSummary,
  ProviderState,
  StoredEvent,
} from "../core/types.js";
import { type Cause, type Diagnosis, rankCauses } from "./diagnosis.js";
import { causesOfAuthError } from "./explain-token.js";
import { FIX, type FixContext } from "./fix-steps.js";

export interface ConnectionObservation {
  connection: Connection;
  /** Any order; the explanation sorts them. */
  events: StoredEvent[];
  /**
   * Kinds whose last refresh was started and never got an outcome (the journal's open entry) and
   * that no process holds a live claim on any more: a refresh still in flight is not in doubt.
   */
  refreshInDoubt: CredentialKind[];
  /** Credentials whose stored tokens this process's key ring cannot open. */
  unopenable?: UnopenableCredential[];
  providerState: ProviderState | null;
  /**
   * The provider flag names client credentials other than the ones this diagnosis runs with (a
   * process still on an old secret): it holds back only the processes sending those.
   */
  flagNamesOtherCredentials?: boolean;
  nowMs: number;
  context: FixContext;
}

export interface UnopenableCredential {
  kind: CredentialKind;
  /** Why, as the sealer says it: the key id, never a key or a token. */
  problem: string;
}

export interface TimelineEntry {
  atMs: number;
  kind: CredentialKind | null;
  text: string;
}

export interface ConnectionExplanation {
  diagnosis: Diagnosis;
  /** Oldest first. */
  timeline: TimelineEntry[];
  /** The credential the diagnosis is about (the worst one). */
  credential: CredentialKind | null;
}

const SEVERITY = { needs_reauth: 2, refresh_failing: 1, active: 0 } as const;

export const iso = (ms: number): string => new Date(ms).toISOString().replace(".000Z", "Z");

const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
const num = (v: unknown): number | null => (typeof v === "number" ? v : null);

/** One line per event, never holding a secret (events never do). */
export function describeEvent(e: StoredEvent): string {
  const d = e.data;
  const error = str(d["error"]);
  switch (e.type) {
    case "imported":
    case "reauthorized": {
      const exp = num(d["expiresAtMs"]);
      return `${e.type === "imported" ? "imported" : "reconnected (tokens replaced)"}${d["rotating"] === true ? ", rotating" : ", no refresh token"}${exp === null ? "" : `, access token expires ${iso(exp)}`}`;
    }
    case "refreshed": {
      const exp = num(d["expiresAtMs"]);
      return `refreshed${d["refreshTokenRotated"] === true ? " (new refresh token stored)" : ""}${d["recoveredLostResponse"] === true ? " after a lost reply: the old refresh token still worked" : ""}${exp === null ? "" : `, valid until ${iso(exp)}`}`;
    }
    case "refresh_failed": {
      const next = num(d["nextAttemptAtMs"]);
      return `refresh failed: ${error ?? e.reason ?? "unknown"}${next === null ? " (no retry: dead)" : `, retry at ${iso(next)}`}`;
    }
    case "refresh_started":
      return "refresh started";
    case "needs_reauth":
      return `marked needs_reauth (${e.reason ?? "unknown"})`;
    case "recovered":
      return "recovered: usable again";
    case "checked":
      if (d["source"] === "api_call") return `an API call with the token was refused: ${error ?? "unknown"}`;
      return d["ok"] === true ? "health check ok (auth.test)" : `health check failed: ${error ?? "unknown"}`;
    case "revoked":
      return `revoked (Slack reported ${error ?? e.reason ?? "a revocation"})`;
    case "uninstalled":
      return "app uninstalled (Slack sent app_uninstalled)";
    case "deleted":
      // One credential removed (connections.deleteCredential); a whole connection leaves no log.
      if (d["revoked"] === true) return "credential deleted, its tokens revoked at the provider first";
      if (error !== null) return `credential deleted; revoking its tokens failed (${error})`;
      return "credential deleted (its tokens were not revoked)";
    case "provider_misconfigured":
      return `provider refused our client credentials (${error ?? "unknown"})`;
  }
}

function pickCredential(c: Connection): CredentialSummary | null {
  const order = (k: CredentialKind) => (k === "bot" ? 0 : k === "user" ? 1 : 2);
  return (
    [...c.credentials].sort(
      (a, b) => SEVERITY[b.status] - SEVERITY[a.status] || order(a.kind) - order(b.kind),
    )[0] ?? null
  );
}

const cause = (code: Cause["code"], likelihood: Cause["likelihood"], explanation: string): Cause => ({
  code,
  likelihood,
  explanation,
});

/**
 * @example
 * const { diagnosis, timeline } = explainConnection({ connection, events, refreshInDoubt: [], providerState: null, nowMs, context });
 */
export function explainConnection(o: ConnectionObservation): ConnectionExplanation {
  const events = [...o.events].sort((a, b) => a.atMs - b.atMs || a.id - b.id);
  const timeline = events.map((e) => ({ atMs: e.atMs, kind: e.kind, text: describeEvent(e) }));
  const credential = pickCredential(o.connection);
  const context: FixContext = { ...o.context, connectionId: o.connection.id };
  const token = {
    kind:
      credential?.kind === "user"
        ? ("user" as const)
        : credential?.kind === "bot"
          ? ("bot" as const)
          : ("unknown" as const),
    rotating: credential?.hasRefreshToken ?? false,
  };
  const flag = o.providerState?.status === "misconfigured" ? o.providerState : null;
  const othersFlag = flag !== null && o.flagNamesOtherCredentials === true ? flag : null;
  const ourFlag = othersFlag === null ? flag : null;
  const othersCause = othersFlag
    ? [
        cause(
          "client_credentials_mismatch",
          "low",
          `Since ${iso(othersFlag.sinceMs)} Slack refuses client credentials other than the ones configured here (${othersFlag.lastError ?? "unknown"}), as another process reported (one still on an old secret?). It holds back only the processes that send them; the flag is lifted ${STALE_FLAG_MS / 60_000} minutes after the last such report.`,
        ),
      ]
    : [];
  // A credential this ring cannot open is skipped by every refresher and fails every token request,
  // while its status still reads as it was: the key is the story, whatever else the log says. A dead
  // one is not: a reconnect replaces its tokens, key and all.
  const locked = (o.unopenable ?? []).filter(
    (u) => o.connection.credentials.find((c) => c.kind === u.kind)?.status !== "needs_reauth",
  );
  const keyCauses = locked.map((u) =>
    cause(
      "encryption_key_missing",
      "high",
      `The ${u.kind} credential's stored tokens cannot be decrypted with this process's TOKENWARDEN_ENCRYPTION_KEY: ${u.problem}. Until they can, its refreshes are skipped (and tried again hourly) and a request for its token fails with config_invalid; its status does not change and no webhook is sent. The tokens themselves are intact: nothing at Slack is wrong.`,
    ),
  );
  // Beside a dead credential the death stays the verdict (a restored key leaves it dead; only a
  // reconnect revives it), and the key is said as well, or fixing the death alone would leave it.
  const keyAside = keyCauses.length > 0 && credential?.status === "needs_reauth";
  const done = (diagnosis: Omit<Diagnosis, "token">): ConnectionExplanation => ({
    diagnosis: {
      ...diagnosis,
      token,
      causes: rankCauses([...diagnosis.causes, ...othersCause, ...(keyAside ? keyCauses : [])]),
      fix: keyAside ? [...diagnosis.fix, FIX.restoreKey()] : diagnosis.fix,
    },
    timeline,
    credential: credential?.kind ?? null,
  });

  // The provider flag explains a credential that should work but cannot be refreshed; a dead one
  // stays dead whatever the client credentials, so its own story (and fix) comes first.
  const misconfigured = (): ConnectionExplanation | null =>
    ourFlag !== null
      ? done({
          verdict: "misconfigured",
          refreshable: false,
          error: ourFlag.lastError,
          causes: [
            cause(
              "client_credentials_mismatch",
              "high",
              `Since ${iso(ourFlag.sinceMs)} Slack refuses our client credentials (${ourFlag.lastError ?? "unknown"}). Refreshes are held back; the connection's refresh tokens were not spent and will work once the credentials are fixed.`,
            ),
          ],
          fix: [FIX.fixClientCredentials(), FIX.checkApp(context), FIX.refreshAndPersist(context)],
        })
      : null;

  if (credential === null) {
    return (
      misconfigured() ??
      done({
        verdict: "invalid",
        refreshable: false,
        error: null,
        causes: [],
        fix: [FIX.reinstall(context)],
      })
    );
  }
  if (keyCauses.length > 0 && !keyAside) {
    return done({
      verdict: "misconfigured",
      refreshable: false,
      error: null,
      causes: keyCauses,
      fix: [FIX.restoreKey(), ...(ourFlag === null ? [] : [FIX.fixClientCredentials()])],
    });
  }
  const mine = events.filter((e) => e.kind === credential.kind || e.kind === null);
  const shape = { kind: token.kind, rotating: token.rotating };

  if (credential.status === "needs_reauth") {
    // Still worth saying when the provider is flagged too: the reconnect's code exchange needs
    // the right client credentials, so they are fixed first.
    const dead = (d: Omit<Diagnosis, "token">): ConnectionExplanation =>
      ourFlag !== null
        ? done({
            ...d,
            causes: [
              ...d.causes,
              cause(
                "client_credentials_mismatch",
                "low",
                `Also, since ${iso(ourFlag.sinceMs)} Slack refuses our client credentials (${ourFlag.lastError ?? "unknown"}); that did not kill this credential, but a reconnect needs them right.`,
              ),
            ],
            fix: [FIX.fixClientCredentials(), ...d.fix],
          })
        : done(d);
    const reason = credential.reason ?? "invalid_auth";
    const failure = [...mine].reverse().find((e) => e.type !== "needs_reauth" && e.reason === reason);
    const at = failure === undefined ? "" : ` at ${iso(failure.atMs)}`;
    const mineContext: FixContext = { ...context, credential: credential.kind };
    // A dead user token beside a working credential need not be reconnected: it can be signed out.
    const othersWork = o.connection.credentials.some(
      (c) => c.kind !== credential.kind && c.status !== "needs_reauth",
    );
    const deadFix = [
      FIX.reinstall(mineContext),
      ...(credential.kind === "user" && othersWork ? [FIX.signOutUser(mineContext)] : []),
      FIX.importNew(mineContext),
      FIX.verify(mineContext),
    ];
    const verdict =
      reason === "account_inactive"
        ? "inactive"
        : reason === "token_revoked" || reason === "app_uninstalled"
          ? "revoked"
          : "invalid";
    const error = credential.lastError ?? reason;
    // A reconnect replaced the tokens: an uninstall or revocation reported before it killed the
    // old set, not this one. The latest report since then is the one that explains the death.
    const connectedAt = mine.findLastIndex((e) => e.type === "imported" || e.type === "reauthorized");
    const sinceConnected = mine.slice(connectedAt + 1);
    const uninstalled = sinceConnected.findLast((e) => e.type === "uninstalled");
    if (uninstalled !== undefined || reason === "app_uninstalled") {
      return dead({
        verdict: "revoked",
        refreshable: false,
        error,
        causes: [
          cause(
            "app_uninstalled",
            "high",
            `The app was uninstalled from the workspace${uninstalled === undefined ? at : ` at ${iso(uninstalled.atMs)} (Slack sent app_uninstalled)`}: every token of the installation, refresh tokens included, died at once.`,
          ),
        ],
        fix: deadFix,
      });
    }
    if (reason === "refresh_response_lost") {
      return dead({
        verdict: "invalid",
        refreshable: false,
        error,
        causes: lostResponseCauses(mine, failure),
        fix: deadFix,
      });
    }
    if (reason === "invalid_refresh_token" || reason === "invalid_grant") {
      return dead({
        verdict,
        refreshable: false,
        error,
        causes: refusedRefreshCauses(mine, failure),
        fix: deadFix,
      });
    }
    if (reason === "token_revoked") {
      const revokedEvent = sinceConnected.findLast((e) => e.type === "revoked");
      if (revokedEvent !== undefined) {
        return dead({
          verdict,
          refreshable: false,
          error,
          causes: [
            cause(
              "admin_revoked",
              "high",
              `Slack reported the revocation itself at ${iso(revokedEvent.atMs)} (a tokens_revoked event): the token's owner or a workspace admin revoked it.`,
            ),
            cause("leaked_and_auto_revoked", "low", "Unless it was revoked because it was found published."),
          ],
          fix: deadFix,
        });
      }
      const quiet = shape.rotating
        ? causesOfAuthError("token_revoked", shape)
        : [
            cause(
              "leaked_and_auto_revoked",
              "high",
              `Slack answered token_revoked${at}, and no tokens_revoked event was recorded. When an owner or admin revokes a long-lived token Slack sends that event (tokenwarden serve records it), so a quiet revocation points to Slack's leak scanner: the token was found published somewhere. Slack emails the app's collaborators when it does this.`,
            ),
            ...causesOfAuthError("token_revoked", shape).filter((c) => c.code !== "leaked_and_auto_revoked"),
          ];
      return dead({
        verdict,
        refreshable: false,
        error,
        causes: quiet,
        fix: [...deadFix, FIX.updateSecretStore()],
      });
    }
    return dead({
      verdict,
      refreshable: false,
      error,
      causes: causesOfAuthError(error, shape).map((c, i) =>
        i === 0 ? { ...c, explanation: `Slack answered ${error}${at}. ${c.explanation}` } : c,
      ),
      fix: deadFix,
    });
  }

  const flagged = misconfigured();
  if (flagged !== null) return flagged;

  // A refresh whose process died (a deploy, an OOM, Ctrl-C) or whose reply was lost leaves the
  // credential looking fine; the stored refresh token may already be spent at Slack.
  const inDoubt = o.refreshInDoubt.includes(credential.kind);
  const lostReply = (): Cause =>
    cause(
      "refresh_response_lost",
      "medium",
      "The outcome of the last refresh is unknown: it was sent, and its reply never arrived or its process stopped before recording it. The next attempt presents the old refresh token once more; inside Slack's grace window that recovers the connection, outside it the connection dies as refresh_response_lost.",
    );
  /** The open journal as one more cause, its refresh step made urgent, on an explanation that otherwise stands. */
  const withJournal = (d: Omit<Diagnosis, "token">): ConnectionExplanation => {
    if (!inDoubt) return done(d);
    const refreshStep = FIX.refreshAndPersist(context);
    const fix = d.fix.includes(refreshStep)
      ? d.fix.map((f) => (f === refreshStep ? FIX.refreshWithinGrace(context) : f))
      : [FIX.refreshWithinGrace(context), ...d.fix];
    return done({ ...d, causes: [...d.causes, lostReply()], fix });
  };

  if (credential.status === "refresh_failing" && credential.reason === "provider_misconfigured") {
    // A warden running another app's client refreshed it (client_id_mismatch): the token is not the
    // problem, and neither is the network.
    return withJournal({
      verdict: "misconfigured",
      refreshable: true,
      error: credential.lastError,
      causes: [
        cause(
          "client_credentials_mismatch",
          "high",
          `${credential.failureCount} refresh attempt${credential.failureCount === 1 ? "" : "s"} were refused (${credential.lastError ?? "unknown"}): a tokenwarden running another Slack app's client id and secret refreshed this credential, whose tokens belong to the app recorded when it was installed or last refreshed. Slack spent nothing; the right app's credentials refresh it.`,
        ),
      ],
      fix: [FIX.fixClientCredentials(), FIX.checkApp(context), FIX.refreshAndPersist(context)],
    });
  }

  if (credential.status === "refresh_failing") {
    const limited = credential.reason === "rate_limited";
    const causes = [
      cause(
        limited ? "rate_limited" : "provider_unreachable",
        "high",
        `${credential.failureCount} refresh attempt${credential.failureCount === 1 ? "" : "s"} failed (${credential.lastError ?? "unknown"}); tokenwarden backs off${credential.nextAttemptAtMs === null ? "" : ` and tries again at ${iso(credential.nextAttemptAtMs)}`}. Transient: the connection is not dead.`,
      ),
    ];
    return withJournal({
      verdict: limited ? "rate_limited" : "unreachable",
      refreshable: true,
      error: credential.lastError,
      causes,
      fix: [limited ? FIX.waitAndRetry(null) : FIX.checkNetwork(context), FIX.refreshAndPersist(context)],
    });
  }

  if (credential.expiresAtMs !== null && credential.expiresAtMs <= o.nowMs) {
    if (credential.hasRefreshToken) {
      return withJournal({
        verdict: "expired",
        refreshable: true,
        error: "token_expired",
        causes: [
          cause(
            "refresher_not_running",
            "high",
            `The access token expired at ${iso(credential.expiresAtMs)} and nothing refreshed it, though the connection is healthy: no tokenwarden refresher (serve, startRefresher) is running against this store, and no caller asked for a token.`,
          ),
          cause(
            "access_token_expired",
            "medium",
            "Rotating access tokens live 12 hours; its refresh token gets a new one.",
          ),
        ],
        fix: [FIX.refreshAndPersist(context), FIX.keepRefreshing(context)],
      });
    }
    return done({
      verdict: "expired",
      refreshable: false,
      error: "token_expired",
      causes: [
        cause(
          "access_token_expired",
          "high",
          `The access token expired at ${iso(credential.expiresAtMs)} and was imported without a refresh token, so it cannot be renewed.`,
        ),
        cause(
          "refresh_token_not_persisted",
          "medium",
          "The system it was imported from did not hand over (or never saved) the refresh token.",
        ),
      ],
      fix: [FIX.reinstall(context), FIX.importNew(context)],
    });
  }
  return withJournal({
    verdict: "healthy",
    refreshable: credential.hasRefreshToken,
    error: null,
    causes: [],
    fix: [],
  });
}

function lostResponseCauses(mine: StoredEvent[], failure: StoredEvent | undefined): Cause[] {
  const refusedAt = failure?.atMs ?? null;
  const before = mine.filter((e) => refusedAt === null || e.atMs <= refusedAt);
  const lost = [...before]
    .reverse()
    .find((e) => e.type === "refresh_failed" && e !== failure && num(e.data["nextAttemptAtMs"]) !== null);
  const lastGood = [...before].reverse().find((e) => e.type === "refreshed");
  const story = [
    lastGood === undefined ? null : `The last completed refresh was at ${iso(lastGood.atMs)}.`,
    lost === undefined
      ? "A later refresh was started and its outcome never recorded (the process stopped, or the reply was lost after Slack had acted on it)."
      : `At ${iso(lost.atMs)} a refresh was sent and its reply never arrived (${str(lost.data["error"]) ?? "no answer"}); Slack had most likely already rotated the token, and the new pair was lost with the reply.`,
    refusedAt === null
      ? "The old refresh token was then tried once more and refused."
      : `At ${iso(refusedAt)} the old refresh token was tried once more, as a recovery, and Slack refused it: its grace period was over.`,
  ]
    .filter((s) => s !== null)
    .join(" ");
  return [
    cause("refresh_response_lost", "high", story),
    cause(
      "refresh_token_reused",
      "low",
      "Or another system holding a copy of this installation's refresh token spent it first.",
    ),
  ];
}

function refusedRefreshCauses(mine: StoredEvent[], failure: StoredEvent | undefined): Cause[] {
  const refusedAt = failure?.atMs ?? Number.MAX_SAFE_INTEGER;
  const before = mine.filter((e) => e.atMs <= refusedAt);
  const lastRefresh = [...before].reverse().find((e) => e.type === "refreshed");
  const lastImport = [...before].reverse().find((e) => e.type === "imported" || e.type === "reauthorized");
  const when = failure === undefined ? "" : ` at ${iso(failure.atMs)}`;
  if (lastRefresh !== undefined && (lastImport === undefined || lastRefresh.atMs >= lastImport.atMs)) {
    return [
      cause(
        "refresh_token_reused",
        "high",
        `tokenwarden refreshed at ${iso(lastRefresh.atMs)} and stored the new refresh token; Slack refused that token${when}. tokenwarden spends each refresh token once, so someone else spent it: another system holding a copy of this installation's tokens (the integration you migrated from, a second deployment) is still refreshing, and only one chain survives.`,
      ),
      cause(
        "app_uninstalled",
        "low",
        "Or the installation's tokens were revoked (uninstall, auth.revoke) without an event reaching tokenwarden.",
      ),
    ];
  }
  const imported = lastImport === undefined ? "" : ` imported at ${iso(lastImport.atMs)}`;
  return [
    cause(
      "refresh_token_reused",
      "high",
      `The refresh token${imported} was refused the first time tokenwarden used it${when}: it had already been spent elsewhere. The system it came from refreshed after the export (or is still running and refreshing).`,
    ),
    cause(
      "refresh_token_not_persisted",
      "medium",
      "Or the exported refresh token was already stale: the system it came from refreshed earlier and saved only the access token, not the rotated refresh token.",
    ),
    cause("app_uninstalled", "low", "Or the installation was uninstalled or its tokens revoked."),
  ];
}
