import { TokenwardenError } from "../core/errors.js";
import type { Provider } from "../core/ports.js";
import { jitteredRefreshDueAt } from "../core/refresh-policy.js";
import { Secret } from "../core/secret.js";
import {
  type Classification,
  type Connection,
  CREDENTIAL_KINDS,
  type CredentialKind,
  type NewCredential,
  type NewEvent,
  type Status,
  type StoredCredential,
  type StoredEvent,
} from "../core/types.js";
import { markDead } from "./check.js";
import type { EngineContext } from "./context.js";
import {
  defaultTokenType,
  expiresAtMsOf,
  type ImportInput,
  implausibleExpiry,
  parseImportInput,
  scopesOf,
} from "./import-input.js";
import { missingCredential } from "./missing-credential.js";
import { announce, handBack, providerFor, quietCredential } from "./refresh.js";
import { withTimeout } from "./timeout.js";

type Held = NonNullable<Awaited<ReturnType<typeof quietCredential>>>;

/** One credential's revocation at the provider, as `delete` and `deleteCredential` report it. */
export interface Revocation {
  kind: CredentialKind;
  ok: boolean;
  error?: string;
}

/** A revocation's aim is a token that no longer works: one the provider calls expired or dead already meets it. */
const alreadyUnusable = (c: Classification): boolean => c.kind === "dead" || c.kind === "refreshable";

export interface ListOptions {
  provider?: string;
  status?: Status;
  cursor?: string;
  /** 1–500; default 50. */
  limit?: number;
}

/** Connection management: import, read, list, delete, event log. No method returns a token. */
export function makeConnections(ctx: EngineContext, forget: (connectionId: string) => void) {
  return {
    /**
     * Imports existing tokens as a connection, or replaces its tokens (a
     * reconnect: a dead connection becomes `active` and `recovered` is emitted).
     * The metadata given replaces the stored one; with `mergeMetadata`, it is laid over the stored
     * metadata in the same write (a reconnect keeps what the operator attached, including keys
     * written after the caller last read the connection).
     *
     * @example
     * await warden.connections.import({ id: "T123", provider: "slack",
     *   credentials: { bot: { accessToken, refreshToken, expiresIn: 43200 } } });
     */
    async import(input: ImportInput, options: { mergeMetadata?: boolean } = {}): Promise<Connection> {
      // Optional: a JavaScript caller's null means no options, as undefined does.
      const mergeMetadata = options?.mergeMetadata;
      if (mergeMetadata !== undefined && typeof mergeMetadata !== "boolean") {
        throw new TokenwardenError("invalid_input", "mergeMetadata must be true or false");
      }
      const parsed = parseImportInput(input);
      const { credentialKinds } = providerFor(ctx, parsed.provider);
      // A kind the provider's paths never look up (Slack's `default`) would be stored and then missed
      // by the proxy and by revocation events: the caller's mistake, said before anything is written.
      for (const kind of ["bot", "user", "default"] as const) {
        if (parsed.credentials[kind] !== undefined && credentialKinds?.includes(kind) === false) {
          throw new TokenwardenError(
            "invalid_input",
            `invalid connection import: credentials.${kind}: a ${parsed.provider} connection holds ${credentialKinds.join(" and ")} credentials, not ${kind}`,
          );
        }
      }
      const now = ctx.clock.now();
      const implausible = implausibleExpiry(parsed, now);
      if (implausible !== null) {
        throw new TokenwardenError("invalid_input", `invalid connection import: ${implausible.message}`);
      }
      const id = parsed.id ?? `conn_${ctx.random.token(12)}`;
      const credentials: NewCredential[] = [];
      for (const kind of ["bot", "user", "default"] as const) {
        const c = parsed.credentials[kind];
        if (c === undefined) continue;
        const expiresAtMs = expiresAtMsOf(c, now);
        const refreshToken = c.refreshToken ? new Secret(c.refreshToken) : null;
        credentials.push({
          kind,
          tokens: {
            accessToken: new Secret(c.accessToken),
            refreshToken,
            tokenType: c.tokenType ?? defaultTokenType(parsed.provider, kind),
            expiresAtMs,
            scopes: scopesOf(c.scopes),
          },
          providerData: c.providerData ?? {},
          // The issue time of an imported token is unknown: its remaining life counts as its lifetime.
          refreshDueAtMs: jitteredRefreshDueAt(
            { expiresAtMs, issuedAtMs: now, hasRefreshToken: refreshToken !== null },
            ctx.random.next(),
            ctx.policy,
            ctx.timings.jitterFraction,
          ),
        });
      }
      const existing = await ctx.store.getConnection(id);
      const type = existing === null ? "imported" : "reauthorized";
      const events: NewEvent[] = credentials.map((c) => ({
        connectionId: id,
        kind: c.kind,
        type,
        atMs: now,
        data: { expiresAtMs: c.tokens.expiresAtMs, rotating: c.tokens.refreshToken !== null },
      }));
      const change = await ctx.store.putConnection(
        { id, provider: parsed.provider, metadata: parsed.metadata ?? {}, credentials },
        now,
        events,
        { mergeMetadata: mergeMetadata === true },
      );
      forget(id);
      // As the episode's stored event names it: the one credential imported, or none of several.
      announce(
        ctx,
        id,
        parsed.provider,
        credentials.length === 1 ? (credentials[0]?.kind ?? null) : null,
        change,
        now,
      );
      const saved = await ctx.store.getConnection(id);
      if (saved === null)
        throw new TokenwardenError("conflict", `connection ${id} was deleted while importing`);
      return saved;
    },

    async get(id: string): Promise<Connection> {
      const connection = await ctx.store.getConnection(id);
      if (connection === null) throw new TokenwardenError("not_found", `no connection ${id}`);
      return connection;
    },

    async list(options: ListOptions = {}): Promise<{ items: Connection[]; nextCursor: string | null }> {
      const limit = options.limit ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
        throw new TokenwardenError("invalid_input", "limit must be an integer from 1 to 500");
      }
      return ctx.store.listConnections({
        limit,
        ...(options.provider === undefined ? {} : { provider: options.provider }),
        ...(options.status === undefined ? {} : { status: options.status }),
        ...(options.cursor === undefined ? {} : { cursor: options.cursor }),
      });
    },

    async events(id: string, options: { limit?: number; beforeId?: number } = {}): Promise<StoredEvent[]> {
      await this.get(id);
      return ctx.store.listEvents(id, {
        limit: options.limit ?? 100,
        ...(options.beforeId === undefined ? {} : { beforeId: options.beforeId }),
      });
    },

    /**
     * Forgets a connection; with `revoke`, first revokes its tokens at the
     * provider (best effort: a failure there is reported, the delete still happens).
     */
    async delete(
      id: string,
      options: { revoke?: boolean } = {},
    ): Promise<{ deleted: true; revoked: Revocation[] }> {
      const connection = await this.get(id);
      const revoked: Revocation[] = [];
      const held: Held[] = [];
      // Until the delete ends the claims stay in flight (close() waits for them) but are no longer
      // renewed: the delete is one short transaction, well inside the lease, and a renewal racing it
      // would find the claim gone and log a takeover that is not one.
      let ending: Array<() => void> = [];
      try {
        if (options.revoke) await revokeAll(connection, held, revoked);
        ending = held.map((h) => ctx.claims.handingBack(h.claim));
        await ctx.store.deleteConnection(id);
      } catch (error) {
        // Not deleted: the claims go back, or they would read as refreshes in doubt.
        for (const h of held) {
          h.letGo();
          await handBack(ctx, h.claim);
        }
        throw error;
      } finally {
        for (const end of ending) end();
      }
      forget(id);
      return { deleted: true, revoked };
    },

    /**
     * Forgets one credential of a connection and keeps the others (Slack: signs a user out, keeps the
     * bot); with `revoke`, first revokes its tokens at the provider, as `delete` does (best effort,
     * the refresh claim held throughout). The connection's status is rolled up from the credentials
     * left. The last credential is refused (`conflict`): delete the connection instead.
     */
    async deleteCredential(
      id: string,
      kind: CredentialKind,
      options: { revoke?: boolean } = {},
    ): Promise<{ deleted: true; revoked: Revocation[]; connection: Connection }> {
      if (typeof (kind as unknown) !== "string" || (kind as string) === "") {
        throw new TokenwardenError("invalid_input", `kind must be one of ${CREDENTIAL_KINDS.join(", ")}`);
      }
      const deleteCredential = ctx.store.deleteCredential?.bind(ctx.store);
      if (deleteCredential === undefined) {
        throw new TokenwardenError(
          "config_invalid",
          "this store cannot delete one credential (it has no deleteCredential); delete the connection instead",
        );
      }
      const connection = await this.get(id);
      const refused = undeletable(connection, kind);
      if (refused !== null) throw refused;
      const ref = { connectionId: id, kind };
      let revocation: Revocation | null = null;
      let held: Held | null = null;
      let ending: (() => void) | null = null;
      let ifVersion: number | undefined;
      let outcome: Awaited<ReturnType<typeof deleteCredential>>;
      let now: number;
      try {
        if (options?.revoke) {
          const provider = providerFor(ctx, connection.provider);
          // Held until the delete, as `delete` holds them: no refresh can mint tokens the revocation misses.
          held = await quietCredential(ctx, ref);
          const credential = await ctx.store.getCredential(ref);
          if (credential === null) throw await missingCredential(ctx, ref);
          ifVersion = credential.version;
          revocation = await revokeCredential(provider, credential);
        }
        now = ctx.clock.now(); // after the revocation, which may have taken a while
        ending = held === null ? null : ctx.claims.handingBack(held.claim);
        outcome = await deleteCredential(
          ref,
          now,
          {
            connectionId: id,
            kind,
            type: "deleted",
            atMs: now,
            data: {
              revoked: revocation?.ok === true,
              ...(revocation?.error ? { error: revocation.error } : {}),
            },
          },
          // Only the tokens just revoked: new ones stored meanwhile (a reconnect) are not forgotten unrevoked.
          ifVersion === undefined ? {} : { ifVersion },
        );
      } catch (error) {
        // Not deleted: the claim goes back, or it would read as a refresh in doubt.
        if (held !== null) {
          held.letGo();
          await handBack(ctx, held.claim);
        }
        throw error;
      } finally {
        ending?.();
      }
      if (outcome.kind !== "deleted" && held !== null) await handBack(ctx, held.claim);
      forget(id);
      switch (outcome.kind) {
        case "deleted":
          announce(ctx, id, connection.provider, kind, outcome.change, now);
          return {
            deleted: true,
            revoked: revocation === null ? [] : [revocation],
            connection: await this.get(id),
          };
        case "not_found":
          throw await missingCredential(ctx, ref);
        case "changed":
          throw new TokenwardenError(
            "conflict",
            `the ${kind} credential of connection ${id} was replaced while it was being revoked (a reconnect): its old tokens are revoked, the new ones kept; delete it again to remove them`,
          );
        case "last_credential": {
          // Not revoked (not asked to, or it failed): its tokens still work, and it stays as it is.
          if (revocation?.ok !== true) throw lastCredential(id, kind);
          // Its tokens are dead at the provider now: the store says so rather than serve them.
          await markDead(ctx, id, [kind], "token_revoked", "revoked", "revoked", {
            ...(ifVersion === undefined ? {} : { ifVersions: { [kind]: ifVersion } }),
          });
          throw new TokenwardenError(
            "conflict",
            `the ${kind} credential became the only one connection ${id} holds while it was being revoked: it is kept, marked needs_reauth (token_revoked); delete the connection instead`,
          );
        }
      }
    },
  };

  /**
   * Revokes every token of the connection, refresh token first. Each credential's refresh claim is
   * taken (waiting for a refresh in flight elsewhere to store its tokens) and held until the delete:
   * otherwise a refresh answered between the revocation and the delete mints tokens nobody revokes.
   */
  async function revokeAll(connection: Connection, held: Held[], revoked: Revocation[]): Promise<void> {
    const provider = providerFor(ctx, connection.provider);
    for (const { kind } of connection.credentials) {
      const quiet = await quietCredential(ctx, { connectionId: connection.id, kind });
      if (quiet !== null) held.push(quiet);
    }
    for (const credential of await ctx.store.listCredentials(connection.id)) {
      revoked.push(await revokeCredential(provider, credential));
    }
  }

  /** Revokes a credential's tokens at the provider, best effort: a failure is its row, never a throw. */
  async function revokeCredential(provider: Provider, credential: StoredCredential): Promise<Revocation> {
    // The refresh token first, so no new access token can be minted from it while the access
    // token is revoked; with rotation on, revoking one does not revoke the other.
    const tokens: Array<[string, Secret]> = [["access token", credential.accessToken]];
    if (credential.refreshToken !== null) tokens.unshift(["refresh token", credential.refreshToken]);
    let error: string | undefined;
    for (const [label, token] of tokens) {
      const outcome = await withTimeout(ctx.timings.providerTimeoutMs, (signal) =>
        provider.revoke(token, signal),
      );
      if (outcome.kind === "ok" || alreadyUnusable(outcome.classification)) continue;
      error ??= `${label}: ${outcome.classification.error}`;
    }
    return error === undefined
      ? { kind: credential.kind, ok: true }
      : { kind: credential.kind, ok: false, error };
  }
}

/**
 * Why `kind` cannot be deleted from `connection` on its own, if it cannot: it holds no such credential
 * (a string that is no kind is not echoed: a path segment may hold anything), or it is the only one.
 */
function undeletable(connection: Connection, kind: string): TokenwardenError | null {
  const held = connection.credentials.map((c) => c.kind);
  const holds = `it holds ${held.join(" and ") || "none"}`;
  if (!(CREDENTIAL_KINDS as readonly string[]).includes(kind)) {
    return new TokenwardenError(
      "not_found",
      `connection ${connection.id} has no such credential: a kind is ${CREDENTIAL_KINDS.slice(0, -1).join(", ")} or ${CREDENTIAL_KINDS.at(-1)} (${holds})`,
    );
  }
  if (!held.includes(kind as CredentialKind)) {
    return new TokenwardenError(
      "not_found",
      `connection ${connection.id} has no ${kind} credential (${holds})`,
    );
  }
  if (held.length === 1) return lastCredential(connection.id, kind);
  return null;
}

function lastCredential(connectionId: string, kind: string): TokenwardenError {
  // A connection without credentials would be `active` and serve nothing; and deleting the whole
  // connection (its metadata, its event log) is a bigger step than the caller asked for.
  return new TokenwardenError(
    "conflict",
    `the ${kind} credential is the only one connection ${connectionId} holds: delete the connection instead`,
  );
}
