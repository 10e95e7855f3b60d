import { TokenwardenError } from "../core/errors.js";
import type { CredentialRef } from "../core/types.js";
import type { EngineContext } from "./context.js";

/**
 * The not_found error for a credential the store does not hold, saying which is missing: the whole
 * connection (deleted, perhaps by another process a moment ago) or only that kind of credential.
 * Asks the store once more, on this error path only.
 */
export async function missingCredential(ctx: EngineContext, ref: CredentialRef): Promise<TokenwardenError> {
  const connection = await ctx.store.getConnection(ref.connectionId).catch(() => null);
  return new TokenwardenError(
    "not_found",
    connection === null
      ? `no connection ${ref.connectionId}`
      : `no ${ref.kind} credential on connection ${ref.connectionId}`,
  );
}
