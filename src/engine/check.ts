import { TokenwardenError } from "../core/errors.js";
import type { Secret } from "../core/secret.js";
import type {
  Classification,
  Connection,
  CredentialKind,
  CredentialRef,
  Reason,
  Status,
  StoredCredential,
} from "../core/types.js";
import type { EngineContext } from "./context.js";
import { announce, providerFor, refreshCredential } from "./refresh.js";
import { withTimeout } from "./timeout.js";

export interface CredentialCheck {
  kind: CredentialKind;
  ok: boolean;
  /** The provider's error string when not ok. */
  error: string | null;
  status: Status;
  reason: Reason | null;
}

export interface CheckResult {
  connectionId: string;
  status: Status;
  credentials: CredentialCheck[];
}

/**
 * Asks the provider whether each credential still works (Slack: `auth.test`)
 * and acts on the answer as invariant 4 says: an expired token is refreshed
 * and checked again, a dead one marks the credential `needs_reauth`, a
 * transient failure changes nothing.
 */
export async function checkConnection(ctx: EngineContext, connectionId: string): Promise<CheckResult> {
  const connection = await ctx.store.getConnection(connectionId);
  if (connection === null) throw new TokenwardenError("not_found", `no connection ${connectionId}`);
  const provider = providerFor(ctx, connection.provider);
  const results: CredentialCheck[] = [];
  for (const credential of await ctx.store.listCredentials(connectionId)) {
    const ref = { connectionId, kind: credential.kind };
    let token = credential.accessToken;
    let outcome = await withTimeout(ctx.timings.providerTimeoutMs, (signal) => provider.check(token, signal));
    const inDoubt =
      outcome.kind === "failed" &&
      outcome.classification.kind === "dead" &&
      doubtful(await storedHolding(ctx, ref, token.reveal()));
    // A dead verdict in doubt is judged only on a token a refresh has just brought: if that refresh
    // fails, the refresh records its own verdict, and this one says nothing.
    let undecided = inDoubt;
    if (
      outcome.kind === "failed" &&
      credential.refreshToken &&
      (outcome.classification.kind === "refreshable" || inDoubt)
    ) {
      try {
        const fresh = await refreshCredential(ctx, ref, {
          freshUntilMs: Number.MAX_SAFE_INTEGER,
          staleAccessToken: token.reveal(),
          ignoreBackoff: true,
        });
        if (!fresh.failure) undecided = false;
        token = fresh.tokens.accessToken;
        outcome = await withTimeout(ctx.timings.providerTimeoutMs, (signal) => provider.check(token, signal));
      } catch (error) {
        ctx.logger.debug({ err: error, connectionId }, "refresh during a health check failed");
      }
    }
    const now = ctx.clock.now();
    if (outcome.kind === "ok") {
      await learnInstallation(ctx, connection, outcome.installation, now);
      await learnCredential(ctx, credential, token, outcome.credential);
    }
    const classification: Classification | null = outcome.kind === "failed" ? outcome.classification : null;
    const version =
      classification?.kind === "dead" && !undecided
        ? ((await storedHolding(ctx, ref, token.reveal()))?.version ?? null)
        : null;
    if (classification?.kind === "dead" && version !== null) {
      const change = await ctx.store.setCredentialStatus(
        connectionId,
        [credential.kind],
        { status: "needs_reauth", reason: classification.reason, lastError: classification.error },
        now,
        [
          {
            connectionId,
            kind: credential.kind,
            type: "checked",
            atMs: now,
            reason: classification.reason,
            data: { ok: false, error: classification.error },
          },
        ],
        { [credential.kind]: version },
      );
      ctx.cache.delete(ref);
      announce(ctx, connectionId, connection.provider, credential.kind, change, now);
    } else {
      await ctx.store.appendEvents([
        {
          connectionId,
          kind: credential.kind,
          type: "checked",
          atMs: now,
          // superseded: the token checked was replaced meanwhile, so its verdict is not the credential's.
          data:
            classification === null
              ? { ok: true }
              : {
                  ok: false,
                  error: classification.error,
                  ...(classification.kind === "dead" ? { superseded: true } : {}),
                },
        },
      ]);
    }
    const after = await ctx.store.getCredential(ref);
    results.push({
      kind: credential.kind,
      ok: classification === null,
      error: classification?.error ?? null,
      status: after?.status ?? credential.status,
      reason: after?.reason ?? credential.reason,
    });
  }
  const after = await ctx.store.getConnection(connectionId);
  return { connectionId, status: after?.status ?? connection.status, credentials: results };
}

/**
 * The stored credential while `accessToken` is still its access token; null once it has been
 * replaced (rotated, reconnected): a provider's verdict on an old token says nothing about the
 * current one (Slack revokes superseded tokens, and a reconnect's old ones answer invalid_auth). Its
 * version goes to setCredentialStatus as a fence, so a rotation after this read is not overruled either.
 */
export async function storedHolding(
  ctx: EngineContext,
  ref: CredentialRef,
  accessToken: string,
): Promise<StoredCredential | null> {
  const stored = await ctx.store.getCredential(ref);
  return stored !== null && stored.accessToken.reveal() === accessToken ? stored : null;
}

/**
 * Whether a dead verdict on this stored token must wait for a refresh: its last refresh's answer was
 * lost, so the provider may hold tokens the store never heard of, and Slack's limit of two active
 * access tokens (slack-api.md §3.4) then revokes the stored one while its refresh token still works
 * (found by a chaos soak: two lost answers, then `token_revoked` killed a live connection). The
 * refresh settles it: new tokens, or a refusal recorded as `refresh_response_lost`.
 */
export function doubtful(held: StoredCredential | null): boolean {
  return held?.refreshInDoubt === true && held.refreshToken !== null;
}

/** Records what a check learned of the installation where the metadata says nothing (never overwrites). */
async function learnInstallation(
  ctx: EngineContext,
  connection: Connection,
  installation: Record<string, string> | undefined,
  nowMs: number,
): Promise<void> {
  const missing = Object.entries(installation ?? {}).filter(([k]) => connection.metadata[k] === undefined);
  if (missing.length === 0) return;
  const patch = Object.fromEntries(missing);
  // onlyMissing: decided in the store, so a team_id an import wrote meanwhile is not overwritten.
  await ctx.store.updateMetadata(connection.id, patch, nowMs, { onlyMissing: true });
  Object.assign(connection.metadata, patch); // the next credential of this check sees them
}

/**
 * Records what a check learned of the credential's own tokens (Slack: whose user token it is) in its
 * provider data where it has no value, never overwriting (what is there came from the provider's
 * install or refresh answer), and only while `token`, the one checked, is still the credential's.
 * What it cannot record costs the check nothing: its verdict is recorded all the same.
 */
async function learnCredential(
  ctx: EngineContext,
  listed: StoredCredential,
  token: Secret,
  facts: Record<string, string> | undefined,
): Promise<void> {
  const missing = Object.entries(facts ?? {}).filter(
    ([k]) => listed.providerData[k] === undefined || listed.providerData[k] === null,
  );
  const learn = ctx.store.learnProviderData?.bind(ctx.store);
  if (missing.length === 0 || learn === undefined) return;
  const ref = { connectionId: listed.connectionId, kind: listed.kind };
  try {
    const held = await storedHolding(ctx, ref, token.reveal());
    if (held !== null) await learn(ref, Object.fromEntries(missing), held.version);
  } catch (error) {
    ctx.logger.warn(
      { err: error, ...ref },
      "a health check could not record what it learned of a credential",
    );
  }
}

/** Marks credentials dead after an outside signal (an uninstall event, a revocation seen by a caller). */
export async function markDead(
  ctx: EngineContext,
  connectionId: string,
  kinds: CredentialKind[] | "all",
  reason: Reason,
  error: string,
  eventType: "revoked" | "uninstalled" | "checked",
  options: {
    /** Only credentials still at these versions (the verdict was about the token of that version). */
    ifVersions?: Partial<Record<CredentialKind, number>>;
    /** Only credentials issued before this instant (the signal happened then: markNeedsReauth). */
    ifIssuedBeforeMs?: number;
    /** What gave the verdict, when not a health check: `api_call` for a call made through withToken. */
    source?: "api_call";
  } = {},
): Promise<CredentialKind[]> {
  const { ifVersions, ifIssuedBeforeMs, source } = options;
  const connection = await ctx.store.getConnection(connectionId);
  if (connection === null) throw new TokenwardenError("not_found", `no connection ${connectionId}`);
  const now = ctx.clock.now();
  const affected = kinds === "all" ? connection.credentials.map((c) => c.kind) : kinds;
  const change = await ctx.store.setCredentialStatus(
    connectionId,
    kinds,
    { status: "needs_reauth", reason, lastError: error },
    now,
    affected.map((kind) => ({
      connectionId,
      kind,
      type: eventType,
      atMs: now,
      reason,
      data: source === undefined ? { error } : { error, source },
    })),
    ifVersions,
    ifIssuedBeforeMs,
  );
  for (const kind of affected) ctx.cache.delete({ connectionId, kind });
  announce(
    ctx,
    connectionId,
    connection.provider,
    // As the episode's stored event names it: the one credential the verdict changed, or none.
    change?.changed.length === 1 ? (change.changed[0] ?? null) : null,
    change,
    now,
  );
  // What the store changed (all, some or none of what was asked): not what was asked.
  return change?.changed ?? [];
}
