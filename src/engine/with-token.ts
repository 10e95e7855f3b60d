import { ProviderUnavailableError } from "../core/errors.js";
import type { Classification, CredentialKind } from "../core/types.js";
import { doubtful, markDead, storedHolding } from "./check.js";
import type { EngineContext } from "./context.js";
import { type AccessToken, type GetTokenOptions, toAccessToken } from "./get-token.js";
import { providerFor, refreshCredential } from "./refresh.js";

export interface WithTokenOptions extends GetTokenOptions {
  /**
   * Reads the provider's error string from what `fn` threw or returned; the
   * default understands `@slack/web-api` errors (`err.data.error`) and Slack
   * response bodies (`{ ok: false, error }`). A `code` is not read: it names the
   * client's own failure (`slack_webapi_platform_error`, `ECONNRESET`), not Slack's answer.
   */
  errorOf?: (thrownOrReturned: unknown) => string | null;
}

/** Finds Slack's error string in a WebClient error or a raw `{ ok: false, error }` body. */
export function defaultErrorOf(value: unknown): string | null {
  if (typeof value !== "object" || value === null) return null;
  const v = value as { ok?: unknown; error?: unknown; data?: { ok?: unknown; error?: unknown } };
  // Only Slack's envelope, `ok: false` with its error, returned or inside @slack/web-api's thrown
  // error: another library's error that merely has an `error` field (an OAuth client's
  // `{ error: "invalid_grant" }`) would otherwise be taken for Slack's verdict on this token.
  if (v.data?.ok === false && typeof v.data.error === "string") return v.data.error;
  if (v.ok === false && typeof v.error === "string") return v.error;
  return null;
}

function refreshFailedError(
  connectionId: string,
  kind: CredentialKind,
  failure: Classification,
): ProviderUnavailableError {
  const transient = failure.kind === "transient";
  return new ProviderUnavailableError(
    `the provider called the ${kind} token of ${connectionId} expired, and refreshing it failed (${failure.error})`,
    transient || failure.kind === "misconfigured" ? failure.reason : "provider_unavailable",
    transient ? (failure.retryAfterMs ?? null) : null,
    { providerError: failure.error },
  );
}

/**
 * Runs `fn` with a fresh token; `fn` may run again (up to three runs in all), so it should make one
 * provider call. On `token_expired` it refreshes once (unless another process already did) and
 * retries once; on a dead-credential error it marks the connection `needs_reauth` before passing the
 * error on, unless the stored token's refresh is in doubt (see `doubtful`): then it refreshes and
 * retries once first, and judges the answer to that. A dead answer about a token the store has since
 * replaced is retried once with the stored one.
 */
export function makeWithToken(
  ctx: EngineContext,
  getToken: (id: string, options?: GetTokenOptions) => Promise<AccessToken>,
) {
  return async function withToken<T>(
    connectionId: string,
    fn: (accessToken: string, token: AccessToken) => Promise<T>,
    options: WithTokenOptions = {},
  ): Promise<T> {
    const errorOf = options.errorOf ?? defaultErrorOf;
    type Attempt =
      | { kind: "returned"; value: T; error: string | null }
      | { kind: "threw"; thrown: unknown; error: string | null };
    const attempt = async (token: AccessToken): Promise<Attempt> => {
      try {
        const value = await fn(token.accessToken, token);
        return { kind: "returned", value, error: errorOf(value) };
      } catch (thrown) {
        return { kind: "threw", thrown, error: errorOf(thrown) };
      }
    };
    const first = await getToken(connectionId, options);
    // The token names its provider: no store read to classify an answer.
    const classify = (error: string): Classification =>
      providerFor(ctx, first.provider).classifyApiError(error, 200);
    const ref = { connectionId, kind: first.kind };
    let used = first.accessToken;
    let result = await attempt(first);
    let refreshed = false;
    let retriedReplaced = false;
    while (result.error !== null) {
      const classification = classify(result.error);
      // Only a verdict on the stored token kills the credential: one on a token since replaced (Slack
      // revokes superseded tokens; a reconnect's old ones answer invalid_auth) says nothing of it.
      const held = classification.kind === "dead" ? await storedHolding(ctx, ref, used) : null;
      if (!refreshed && (classification.kind === "refreshable" || doubtful(held))) {
        refreshed = true;
        const fresh = await refreshCredential(ctx, ref, {
          freshUntilMs: Number.MAX_SAFE_INTEGER,
          staleAccessToken: used,
          ignoreBackoff: true,
        });
        // The refresh failed for now (the stored token comes back): the provider has just refused that
        // token, so calling again with it would only hand its error to the caller as an answer.
        if (fresh.failure) throw refreshFailedError(connectionId, first.kind, fresh.failure);
        const second = toAccessToken(fresh.tokens, first.kind, fresh.provider);
        // Nothing to refresh with (no refresh token): the token back is the one Slack just called
        // expired, and a second call with it would only be told so again. The answer stands.
        if (classification.kind === "refreshable" && second.accessToken === used) break;
        used = second.accessToken;
        result = await attempt(second);
        continue;
      }
      if (!retriedReplaced && classification.kind === "dead" && held === null) {
        // A dead answer about a token the store no longer holds (another process rotated it, and Slack
        // revoked the old one on its way): it says nothing of the stored token, and the call did not
        // happen, so it is made once more with that one. A flag of its own: that answer may still
        // need the one refresh above (token_expired, or a stored token in doubt).
        retriedReplaced = true;
        // The store was just read to hold another token: this process's memory of the old one is stale,
        // whether or not the change's notification has arrived yet (on PostgreSQL it may lag).
        ctx.cache.delete(ref);
        const current = await getToken(connectionId, { ...options, kind: first.kind }).catch(() => null);
        if (current !== null && current.accessToken !== used) {
          used = current.accessToken;
          result = await attempt(current);
          continue;
        }
        break;
      }
      if (classification.kind === "dead" && held !== null) {
        await markDead(
          ctx,
          connectionId,
          [first.kind],
          classification.reason,
          classification.error,
          "checked",
          { ifVersions: { [first.kind]: held.version }, source: "api_call" },
        );
      }
      break;
    }
    if (result.kind === "threw") throw result.thrown;
    return result.value;
  };
}
