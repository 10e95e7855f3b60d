import { TokenwardenError } from "../core/errors.js";
import type { ResealBatch, Sealer } from "../core/ports.js";
import type { CredentialKind, CredentialRef, TokenSet } from "../core/types.js";
import { ENCRYPTION_KEY_VARIABLE } from "../crypto/key-ring.js";
import { sealedKeyId, sealedPrefix } from "../crypto/seal.js";

export type TokenField = "access" | "refresh";

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
    const access = reseal(sealer, row.accessTokenSealed, tokenAad(row, "access"));
    const refresh = reseal(sealer, row.refreshTokenSealed, tokenAad(row, "refresh"));
    // Named by the key of the value that failed: the other may be under a key the ring still holds.
    const failed = access.kind === "unreadable" ? access : refresh.kind === "unreadable" ? refresh : null;
    if (failed !== null) {
      batch.unreadable.push({ ref, keyId: failed.keyId });
      continue;
    }
    const patch: Partial<SealedTokens> = {};
    if (access.kind === "resealed") patch.accessTokenSealed = access.sealed;
    if (refresh.kind === "resealed") patch.refreshTokenSealed = refresh.sealed;
    if (access.kind === "resealed" || refresh.kind === "resealed") patches.push({ ref, patch });
  }
  batch.resealed = patches.length;
  const last = stale.at(-1);
  if (stale.length === limit && last !== undefined) {
    batch.next = { connectionId: last.connectionId, kind: last.kind };
  }
  return { batch, patches };
}

/** One sealed value under the current key: already there, re-sealed, or not openable (named by key id). */
function reseal(
  sealer: Sealer,
  sealed: string | null,
  aad: string,
): { kind: "current" } | { kind: "resealed"; sealed: string } | { kind: "unreadable"; keyId: string | null } {
  if (sealed === null || !sealer.needsReseal(sealed)) return { kind: "current" };
  let plaintext: string;
  try {
    plaintext = sealer.open(sealed, aad);
  } catch {
    return { kind: "unreadable", keyId: sealedKeyId(sealed) };
  }
  return { kind: "resealed", sealed: sealer.seal(plaintext, aad) };
}

/** What checkRingKeys reads and writes, from the store it checks. */
export interface KeyRingEvidence {
  /** A settings entry (a key check, a rotated-away mark), or null. */
  setting(key: string): Promise<string | null>;
  /** A few stored tokens sealed under `keyId`, either field (none: the store has no such value). */
  sealedWith(keyId: string): Promise<SealedSample[]>;
  /** Stores a settings entry unless one is there; returns the one stored. */
  putSettingIfAbsent(key: string, value: string): Promise<string>;
  /**
   * Now, in epoch ms, on the clock every instance of the store reads (the database's on PostgreSQL):
   * first-seen times written by different hosts are compared with each other.
   */
  nowMs(): Promise<number>;
}

/** One stored token, as the key check samples it. */
export type SealedSample = CredentialRef & { field: TokenField; sealed: string };

/** A row of the stores' sampling query: its credential and both its sealed tokens. */
export interface SampledRow {
  connection_id: string;
  kind: CredentialKind;
  access: string;
  refresh: string | null;
}

/** The tokens sealed under `keyId` in the rows a sampling query found (each holds one or both). */
export function samplesUnder(keyId: string, rows: readonly SampledRow[]): SealedSample[] {
  const prefix = sealedPrefix(keyId);
  return rows.flatMap((r) => {
    const ref = { connectionId: r.connection_id, kind: r.kind };
    const fields: SealedSample[] = [];
    if (r.access.startsWith(prefix)) fields.push({ ...ref, field: "access", sealed: r.access });
    if (r.refresh?.startsWith(prefix)) fields.push({ ...ref, field: "refresh", sealed: r.refresh });
    return fields;
  });
}

const KEY_CHECK_TEXT = "tokenwarden key check";
const keyCheckAad = (keyId: string) => `key_check\u0000${keyId}`;
/** The settings entry holding `keyId`'s key check. */
export const keyCheckSetting = (keyId: string) => `key_check:${keyId}`;
/** The settings entry naming the key `keys rotate` re-sealed `keyId`'s values under (resealBatch writes it). */
export const rotatedAwaySetting = (keyId: string) => `key_rotated_away:${keyId}`;
/**
 * When (epoch ms, the store's clock) an instance first started with `keyId`, written with its key
 * check: which key is newer.
 */
export const keyFirstSeenSetting = (keyId: string) => `key_first_seen:${keyId}`;

/**
 * What resealBatch marks at the start of a pass: the ring's keys older than the first, as rotated away
 * to it. Only older ones: `keys rotate` run by mistake with step 2's ring (old key first) must not bar
 * the new key from going first. A key seen before first-seen times were kept counts as oldest; when
 * the first key has none either, or the two tie, the order is unknown and nothing is marked.
 */
export function rotatedAwayMarks(
  sealer: Sealer,
  firstSeen: ReadonlyMap<string, number>,
): Array<{ key: string; value: string }> {
  const current = firstSeen.get(sealer.currentKeyId);
  if (current === undefined) return [];
  return sealer.keyIds
    .filter((id) => id !== sealer.currentKeyId && (firstSeen.get(id) ?? Number.NEGATIVE_INFINITY) < current)
    .map((id) => ({ key: rotatedAwaySetting(id), value: sealer.currentKeyId }));
}

/** The first-seen times among settings rows (key, value), by key id. */
export function firstSeenTimes(rows: ReadonlyArray<{ key: string; value: string }>): Map<string, number> {
  const prefix = keyFirstSeenSetting("");
  const times = new Map<string, number>();
  for (const r of rows) {
    const ms = Number(r.value);
    if (r.key.startsWith(prefix) && Number.isFinite(ms)) times.set(r.key.slice(prefix.length), ms);
  }
  return times;
}

/**
 * The other half of Store.checkKeyRing: every key of the ring must be the key its id names in this
 * store. Ids are chosen by operators (`k1`, `k2`), so the same id can come back with other key
 * material (a staging key, `keys generate --id k1` again): started, such an instance would seal new
 * values no correctly keyed one can open. Each id gets a key check in the settings, a short value
 * sealed under it, written by the first instance that starts with that id and opened by every later
 * one. Before the first is written, a few tokens the store already holds under that id (access or
 * refresh: a refresh token a provider never rotates can be all that is left under an old id) must open
 * (one altered value among them is not a wrong key). Costs a settings read per key at startup; the
 * search for stored values under an id runs once, until its key check exists.
 */
export async function checkRingKeys(sealer: Sealer, evidence: KeyRingEvidence): Promise<void> {
  // An instance on a ring from before the rotation (step 2's, old key first: started late, or a cron
  // job's stale environment) would seal what it writes under the key the rotation emptied, which the
  // operator is told may then be removed: those credentials would not open after it is.
  const movedTo = await evidence.setting(rotatedAwaySetting(sealer.currentKeyId));
  if (movedTo !== null) {
    throw new TokenwardenError(
      "config_invalid",
      `the first key of ${ENCRYPTION_KEY_VARIABLE} (key id "${sealer.currentKeyId}") is one \`keys rotate\` re-encrypted ` +
        `every value away from (to key id "${movedTo}"), and may be retired: put the current key first ` +
        "(a new key needs an id never used on this database)",
    );
  }
  for (const keyId of sealer.keyIds) {
    let check = await evidence.setting(keyCheckSetting(keyId));
    if (check === null) {
      const samples = await evidence.sealedWith(keyId);
      const opens = (s: SealedSample) => succeeds(() => sealer.open(s.sealed, tokenAad(s, s.field)));
      if (samples.length > 0 && !samples.some(opens)) throw notThatKey(keyId);
      // Before the key check, so every id with a key check written from now on has a first-seen time.
      // On the store's clock: a host running ahead must not make the old key look newer than the new.
      await evidence.putSettingIfAbsent(keyFirstSeenSetting(keyId), String(await evidence.nowMs()));
      check = await evidence.putSettingIfAbsent(
        keyCheckSetting(keyId),
        sealer.sealWith(keyId, KEY_CHECK_TEXT, keyCheckAad(keyId)),
      );
    }
    const stored = check;
    if (!succeeds(() => sealer.open(stored, keyCheckAad(keyId)) === KEY_CHECK_TEXT)) throw notThatKey(keyId);
  }
}

function succeeds(f: () => unknown): boolean {
  try {
    return f() !== false;
  } catch {
    return false;
  }
}

function notThatKey(keyId: string): TokenwardenError {
  return new TokenwardenError(
    "config_invalid",
    `the key with id "${keyId}" in ${ENCRYPTION_KEY_VARIABLE} is not the key this database knows by that id ` +
      "(values sealed under it do not open): is it the key of another environment? A new key needs an id never used here before",
  );
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
