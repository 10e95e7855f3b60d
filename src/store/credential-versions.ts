import { randomInt } from "node:crypto";

/** Random first versions are drawn below this (2^47, randomInt's limit is 2^48). */
const FIRST_VERSION_SPAN = 2 ** 47;

/**
 * The version of a credential `putConnection` writes. One past the row it replaces, so caches holding
 * the old tokens see a change. A credential with no row before it (a new connection, or one deleted
 * and imported again under the same id) starts at random: versions fence verdicts about particular
 * tokens (`setCredentialStatus`'s `ifVersions`), and a count restarting at 1 after a delete let a
 * verdict about the deleted connection's token land on the new one's.
 */
export function versionAfter(previous: number | null): number {
  return previous === null ? randomInt(1, FIRST_VERSION_SPAN) : previous + 1;
}
