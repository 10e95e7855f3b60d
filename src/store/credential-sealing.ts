import { TokenwardenError } from "../core/errors.js";
import type { ResealBatch, Sealer } from "../core/ports.js";
import type { CredentialRef, TokenSet } from "../core/types.js";
import { sealedKeyId } from "../crypto/seal.js";

type TokenField = "access" | "refresh";

/**
 * Associated data binding a sealed token to its row and field: a value copied
 * to another connection, kind or field fails to open. NUL cannot occur in ids.
 */
export function tokenAad(ref: CredentialRef, field: TokenField): string {
  return `${ref.connectionId}\u0000${ref.kind}\u0000${field}`;
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

/**
 * resealBatch's work on the stale rows it read, in key order: the patches to write, and the rows that
 * do not open, reported instead of failing the batch (a key dropped too early must not stop an urgent
 * rotation of every other row). `resealed` counts the patches.
 */
export function resealRows(
  sealer: Sealer,
  stale: ReadonlyArray<CredentialRef & SealedTokens>,
  limit: number,
): { batch: ResealBatch; patches: Array<{ ref: CredentialRef; patch: Partial<SealedTokens> }> } {
  const batch: ResealBatch = { resealed: 0, unreadable: [], next: null };
  const patches: Array<{ ref: CredentialRef; patch: Partial<SealedTokens> }> = [];
  for (const row of stale) {
    const ref = { connectionId: row.connectionId, kind: row.kind };
    let patch: Partial<SealedTokens> | null;
    try {
      patch = resealTokens(sealer, row);
    } catch {
      const sealed = sealer.needsReseal(row.accessTokenSealed)
        ? row.accessTokenSealed
        : (row.refreshTokenSealed ?? row.accessTokenSealed);
      batch.unreadable.push({ ref, keyId: sealedKeyId(sealed) });
      continue;
    }
    if (patch !== null) patches.push({ ref, patch });
  }
  batch.resealed = patches.length;
  const last = stale.at(-1);
  if (stale.length === limit && last !== undefined) {
    batch.next = { connectionId: last.connectionId, kind: last.kind };
  }
  return { batch, patches };
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

/**
 * Store.checkKeyRing's verdict. `sample` is any stored access token (null: the store holds none);
 * `ringOpensSome` whether any stored one is sealed with a key of the ring. The mistake it catches
 * is a whole other key (a bare key's id derives from the key): writing under it would leave rows no
 * instance holding the real key can open.
 */
export function checkRingHolds(sample: string | null, ringOpensSome: boolean): void {
  if (sample === null || ringOpensSome) return;
  const keyId = sealedKeyId(sample) ?? "(malformed)";
  throw new TokenwardenError(
    "config_invalid",
    `no stored secret is sealed with a key TOKENWARDEN_ENCRYPTION_KEY holds (they use key id "${keyId}"): ` +
      "is this the key this database was written with? (several keys: id:key,… with the current first)",
  );
}
