import type { Sealer } from "../core/ports.js";
import type { CredentialRef, TokenSet } from "../core/types.js";

type TokenField = "access" | "refresh";

/**
 * Associated data binding a sealed token to its row and field: a value copied
 * to another connection, kind or field fails to open. NUL cannot occur in ids.
 */
export function tokenAad(ref: CredentialRef, field: TokenField): string {
  return `${ref.connectionId}\u0000${ref.kind}\u0000${field}`;
}

/** Key ids as the key ring accepts them; anything else in that slot of a stored value is not echoed. */
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/**
 * The id of the key a sealed value names (`v1.<keyId>.…`), read without opening it; null when the
 * value is malformed. Key ids are not secret, so a store can say which key a value it cannot open needs.
 */
export function sealedKeyId(sealed: string): string | null {
  const [version, keyId] = sealed.split(".", 2);
  return version === "v1" && keyId !== undefined && KEY_ID.test(keyId) ? keyId : null;
}

export interface SealedTokens {
  accessTokenSealed: string;
  /** null when the token set carried no refresh token. */
  refreshTokenSealed: string | null;
}

export function sealTokens(sealer: Sealer, ref: CredentialRef, tokens: TokenSet): SealedTokens {
  return {
    accessTokenSealed: sealer.seal(tokens.accessToken.reveal(), tokenAad(ref, "access")),
    refreshTokenSealed:
      tokens.refreshToken === null
        ? null
        : sealer.seal(tokens.refreshToken.reveal(), tokenAad(ref, "refresh")),
  };
}

export function openTokens(
  sealer: Sealer,
  row: CredentialRef & SealedTokens,
): { accessToken: string; refreshToken: string | null } {
  return {
    accessToken: sealer.open(row.accessTokenSealed, tokenAad(row, "access")),
    refreshToken:
      row.refreshTokenSealed === null ? null : sealer.open(row.refreshTokenSealed, tokenAad(row, "refresh")),
  };
}

/** Re-seals what an old key sealed; null when nothing in the row needs it. */
export function resealTokens(
  sealer: Sealer,
  row: CredentialRef & SealedTokens,
): Partial<SealedTokens> | null {
  const patch: Partial<SealedTokens> = {};
  if (sealer.needsReseal(row.accessTokenSealed)) {
    patch.accessTokenSealed = sealer.seal(
      sealer.open(row.accessTokenSealed, tokenAad(row, "access")),
      tokenAad(row, "access"),
    );
  }
  if (row.refreshTokenSealed !== null && sealer.needsReseal(row.refreshTokenSealed)) {
    const aad = tokenAad(row, "refresh");
    patch.refreshTokenSealed = sealer.seal(sealer.open(row.refreshTokenSealed, aad), aad);
  }
  return Object.keys(patch).length === 0 ? null : patch;
}
