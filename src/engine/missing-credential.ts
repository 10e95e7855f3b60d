import { TokenwardenError } from "../core/errors.js";
import type { CredentialRef } from "../core/types.js";
import type { EngineContext } from "./context.js";

/**
 * The not_found error for a credential the store does not hold, saying which is missing: the whole
 * connection (deleted, perhaps by another process a moment ago) or only that kind of credential.
 * Asks the store once more, on this error path only.
 */
export async function missingCredential(ctx: EngineContext, ref: CredentialRef): Promise<TokenwardenError> {
  const credentialMissing = `no ${ref.kind} credential on connection ${ref.connectionId}`;
  try {
    const connection = await ctx.store.getConnection(ref.connectionId);
    return new TokenwardenError(
      "not_found",
      connection === null ? `no connection ${ref.connectionId}` : credentialMissing,
    );
  } catch (error) {
    // Only the message was at stake: a store that cannot answer now changes nothing about the verdict.
    ctx.logger.debug({ err: error, connectionId: ref.connectionId }, "could not tell which is missing");
    return new TokenwardenError("not_found", credentialMissing);
  }
}
