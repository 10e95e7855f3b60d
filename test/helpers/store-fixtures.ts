import { Secret } from "../../src/core/secret.js";
import type {
  CredentialKind,
  NewConnection,
  NewCredential,
  NewEvent,
  ProviderState,
  TokenSet,
} from "../../src/core/types.js";
import { createSealer } from "../../src/crypto/seal.js";

/** Fixed test keys (never used outside tests): `old` seals first, `new` takes over in rotation tests. */
export const OLD_KEY = "old:Zm9yLXRlc3RzLW9ubHktb2xkLWtleS0wMTIzNDU2Nzg=";
export const NEW_KEY = "new:Zm9yLXRlc3RzLW9ubHktbmV3LWtleS0wMTIzNDU2Nzg=";
export const testSealer = () => createSealer(OLD_KEY);
export const rotatedSealer = () => createSealer(`${NEW_KEY},${OLD_KEY}`);
export const newKeyOnlySealer = () => createSealer(NEW_KEY);

/** Token strings that are easy to find in raw bytes if one ever leaks. */
export function tokens(
  label: string,
  options: Partial<Omit<TokenSet, "accessToken" | "refreshToken">> & { refresh?: boolean } = {},
): TokenSet {
  return {
    accessToken: new Secret(`xoxb-access-${label}-PLAINTEXT`),
    refreshToken: options.refresh === false ? null : new Secret(`xoxe-refresh-${label}-PLAINTEXT`),
    tokenType: options.tokenType ?? "bot",
    expiresAtMs: options.expiresAtMs === undefined ? 10_000 : options.expiresAtMs,
    scopes: options.scopes ?? ["chat:write"],
  };
}

export function credential(
  kind: CredentialKind,
  label: string,
  options: { expiresAtMs?: number | null; refreshDueAtMs?: number | null; refresh?: boolean } = {},
): NewCredential {
  const expiresAtMs = options.expiresAtMs === undefined ? 10_000 : options.expiresAtMs;
  return {
    kind,
    tokens: tokens(label, { expiresAtMs, refresh: options.refresh ?? true }),
    providerData: { bot_user_id: `U-${label}` },
    refreshDueAtMs: options.refreshDueAtMs === undefined ? 8_000 : options.refreshDueAtMs,
  };
}

export function connection(id: string, credentials: NewCredential[], provider = "slack"): NewConnection {
  return { id, provider, metadata: { teamName: `team ${id}` }, credentials };
}

export function event(
  connectionId: string,
  type: NewEvent["type"],
  atMs: number,
  kind: CredentialKind | null = "bot",
): NewEvent {
  return { connectionId, kind, type, atMs, reason: null, data: { note: type } };
}

/** A sealed value (`v1.<keyId>.<iv>.<ciphertext>.<tag>`) with one ciphertext character changed: GCM refuses it. */
export function alterCiphertext(sealed: string): string {
  const parts = sealed.split(".");
  const ciphertext = parts[3];
  if (parts.length !== 5 || ciphertext === undefined || ciphertext === "")
    throw new Error("not a v1 sealed value");
  parts[3] = `${ciphertext.startsWith("A") ? "B" : "A"}${ciphertext.slice(1)}`;
  return parts.join(".");
}

/** Slack's client credentials refused since `atMs` (bad_client_secret), as a provider flag records it. */
export function refusedClient(
  atMs: number,
  named: { clientFingerprint?: string | null; assertedAtMs?: number | null } = {},
): ProviderState {
  return {
    provider: "slack",
    status: "misconfigured",
    reason: "provider_misconfigured",
    lastError: "bad_client_secret",
    sinceMs: atMs,
    ...named,
  };
}
