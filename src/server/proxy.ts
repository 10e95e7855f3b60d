/**
 * `ANY /v1/proxy/:id/<method>` → `SLACK_BASE_URL/api/<method>` with a fresh
 * token. The body goes on as received (form or JSON bytes, so it can be sent
 * twice); the caller's own Authorization (our API key) never leaves.
 */
import { classifyTransportError } from "../core/classify.js";
import { NeedsReauthError, ProviderUnavailableError, TokenwardenError } from "../core/errors.js";
import type { CredentialKind } from "../core/types.js";
import { withTimeout } from "../engine/timeout.js";
import type { ServerContext } from "./server-context.js";

/** Slack method names: `chat.postMessage`, `admin.conversations.search`. */
export const METHOD_NAME = /^[A-Za-z][A-Za-z0-9_.]{0,99}$/;

/**
 * Methods the app authenticates to with its client id and secret, not with a connection's token: their
 * answers (`invalid_refresh_token`, `invalid_auth`) are about the tokens or codes in their arguments,
 * and would otherwise be read as a verdict on the connection's token and kill it.
 */
const CLIENT_AUTH_METHOD = /^(oauth\.|openid\.connect\.token)/i;

/**
 * Methods that end the connection's tokens at Slack behind the store's back: the stored credential
 * would read as live until a call failed with it. DELETE /v1/connections/:id?revoke=true does it
 * and forgets the connection in one step; DELETE /v1/connections/:id/credentials/:kind?revoke=true
 * does it for one credential (a user signed out, the bot kept).
 */
const ENDING_METHOD = /^(auth\.revoke|apps\.uninstall)$/i;

/** Response headers worth passing back; hop-by-hop and length headers are Fastify's to set. */
const PASSED_BACK = ["content-type", "retry-after", "x-oauth-scopes", "x-accepted-oauth-scopes"];

export interface ProxyRequest {
  connectionId: string;
  method: string;
  httpMethod: string;
  query: string;
  contentType: string | undefined;
  body: Buffer | undefined;
  kind: CredentialKind | undefined;
}

export interface ProxyAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

interface Attempt extends ProxyAnswer {
  error: string | null;
}

/**
 * Slack's error envelope is a few hundred bytes; an answer larger than this (a page of history, a big
 * workspace's users.list) is parsed only if its bytes say `"ok":false`: parsing megabytes of JSON to
 * read one field would block the event loop, the token route's included, for tens of milliseconds.
 */
const SMALL_ANSWER_BYTES = 64 * 1024;

/**
 * Whether the caller put a `token` argument where Slack reads one (the query, a form body): Slack
 * might then judge that token instead of the one in our header, and its `invalid_auth` would be taken
 * as a verdict on the connection. Names are matched as Slack's form parser would decode them. Slack
 * reads arguments from a text/plain body as from a form, and from the parts of a multipart one.
 */
function carriesTokenArgument(r: ProxyRequest): boolean {
  const isToken = (name: string) => name.toLowerCase() === "token";
  const named = (form: string) => [...new URLSearchParams(form).keys()].some(isToken);
  if (named(r.query)) return true;
  if (r.body === undefined || r.body.length === 0) return false;
  switch ((r.contentType ?? "").split(";")[0]?.trim().toLowerCase()) {
    case "application/x-www-form-urlencoded":
    case "text/plain":
      return named(r.body.toString("utf8"));
    case "multipart/form-data": {
      // A part names its field in its Content-Disposition header. Any such line counts, whatever the
      // boundary: a body Slack parses more leniently than its header says is not let through.
      const headers = r.body.toString("latin1").match(/^content-disposition:[^\r\n]*$/gim) ?? [];
      return headers.some((h) => /;\s*name\s*=\s*(?:"token"|token)\s*(?:;|$)/i.test(h));
    }
    default:
      return false;
  }
}

function slackErrorOf(status: number, body: Buffer, contentType: string | null): string | null {
  if (status === 429) return "ratelimited";
  // A 5xx is Slack's trouble whatever its body says (slack-errors.ts); withToken judges the code
  // alone, as if answered with a 200, so an ok:false envelope on a 5xx must not reach it.
  if (status >= 500) return null;
  if (contentType?.includes("json") !== true) return null;
  if (body.length > SMALL_ANSWER_BYTES && !body.includes('"ok":false')) return null;
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { ok?: unknown; error?: unknown };
    return parsed.ok === false && typeof parsed.error === "string" ? parsed.error : null;
  } catch {
    return null;
  }
}

/** A whole proxied call, body included: Slack's slowest methods answer well within it. */
const PROXY_TIMEOUT_MS = 30_000;

/**
 * One proxied call. `withToken` supplies the token, refreshes once and retries once on
 * `token_expired`, and marks a dead credential; the credential so marked then answers 409 needs_reauth.
 */

export async function proxySlackCall(ctx: ServerContext, r: ProxyRequest): Promise<ProxyAnswer> {
  const slack = ctx.slack;
  if (slack === null) throw new TokenwardenError("provider_misconfigured", "Slack is not configured");
  if (!METHOD_NAME.test(r.method)) throw new TokenwardenError("invalid_input", "not a Slack method name");
  if (CLIENT_AUTH_METHOD.test(r.method)) {
    throw new TokenwardenError(
      "invalid_input",
      `${r.method} takes the app's client credentials, not a connection's token; the proxy does not call it`,
    );
  }
  if (ENDING_METHOD.test(r.method)) {
    const whole = `DELETE /v1/connections/${r.connectionId}?revoke=true`;
    // auth.revoke ends one credential's token: the credential route signs out just that one.
    const one = /^auth\.revoke$/i.test(r.method)
      ? `DELETE /v1/connections/${r.connectionId}/credentials/${r.kind ?? "bot"}?revoke=true (that credential, when the connection holds another) or `
      : "";
    throw new TokenwardenError(
      "invalid_input",
      `${r.method} would end the connection's tokens without the store knowing; use ${one}${whole}${one === "" ? "" : " (the connection)"}`,
    );
  }
  if (carriesTokenArgument(r)) {
    throw new TokenwardenError(
      "invalid_input",
      "remove the token argument: the proxy sends the connection's token in the Authorization header",
    );
  }
  const url = `${slack.baseUrl}/api/${r.method}${r.query}`;
  const hasBody =
    r.httpMethod !== "GET" && r.httpMethod !== "HEAD" && r.body !== undefined && r.body.length > 0;
  let usedKind: CredentialKind | undefined;
  const result = await ctx.warden.withToken(
    r.connectionId,
    (token, about) => {
      usedKind = about.kind;
      // Our token goes only to its own provider's origin: a connection of another provider (the
      // store is shared with library processes that may run any) is not the proxy's to serve.
      if (about.provider !== "slack") {
        throw new TokenwardenError(
          "invalid_input",
          `connection ${r.connectionId} is a ${about.provider} connection; the proxy calls Slack`,
        );
      }
      return withTimeout(PROXY_TIMEOUT_MS, (signal) => attempt(token, signal));
    },
    {
      ...(r.kind === undefined ? {} : { kind: r.kind }),
      errorOf: (v) => (v as Attempt | undefined)?.error ?? null,
    },
  );
  if (result.error !== null && slack.provider.classifyApiError(result.error, result.status).kind === "dead") {
    // The 409 speaks of the credential this call used, and only once withToken has marked it: a dead
    // answer about a token replaced meanwhile leaves a live credential, and Slack's answer goes back as
    // the library's withToken returns it. The connection's own reason may be another credential's.
    const connection = await ctx.warden.connections.get(r.connectionId);
    const used = connection.credentials.find((c) => c.kind === usedKind);
    if (used?.status === "needs_reauth") {
      throw new NeedsReauthError(
        r.connectionId,
        used.reason ?? "invalid_auth",
        ctx.reconnectUrl(r.connectionId, connection.provider),
      );
    }
  }
  return { status: result.status, headers: result.headers, body: result.body };

  async function attempt(token: string, signal: AbortSignal): Promise<Attempt> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (hasBody && r.contentType !== undefined) headers["content-type"] = r.contentType;
    let res: Response;
    let body: Buffer;
    try {
      res = await ctx.fetch(url, {
        method: r.httpMethod,
        headers,
        ...(hasBody && r.body !== undefined ? { body: new Uint8Array(r.body) } : {}),
        redirect: "manual",
        signal,
      });
      body = Buffer.from(await res.arrayBuffer());
    } catch (error) {
      // No answer (refused, reset, timed out): Slack's trouble, not ours, so 503 rather than a 500.
      const { classification } = classifyTransportError(error, signal.aborted);
      throw new ProviderUnavailableError(
        `Slack did not answer ${r.method} (${classification.error})`,
        "provider_unavailable",
        null,
        { cause: error, providerError: classification.error },
      );
    }
    const back: Record<string, string> = {};
    for (const name of PASSED_BACK) {
      const v = res.headers.get(name);
      if (v !== null) back[name] = v;
    }
    return {
      status: res.status,
      headers: back,
      body,
      error: slackErrorOf(res.status, body, res.headers.get("content-type")),
    };
  }
}
