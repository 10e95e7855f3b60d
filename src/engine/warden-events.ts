import { EventEmitter } from "node:events";
import type { Logger } from "../core/ports.js";
import type { CredentialKind, Reason } from "../core/types.js";

export interface NeedsReauthEvent {
  connectionId: string;
  provider: string;
  kind: CredentialKind | null;
  reason: Reason;
  /** Where to send a person to reconnect, when the warden knows its public URL. */
  reconnectUrl: string | null;
  atMs: number;
}
export interface RecoveredEvent {
  connectionId: string;
  provider: string;
  kind: CredentialKind | null;
  atMs: number;
}
export interface RefreshedEvent {
  connectionId: string;
  provider: string;
  kind: CredentialKind;
  expiresAt: Date | null;
  atMs: number;
}
export interface RefreshFailedEvent {
  connectionId: string;
  provider: string;
  kind: CredentialKind;
  reason: Reason;
  /** The provider's own error string (`token_revoked`, `http_503`, `timeout`, …). */
  error: string;
  /** When the next attempt is due; null when the credential is dead. */
  retryAt: Date | null;
  atMs: number;
}
export interface ProviderMisconfiguredEvent {
  provider: string;
  error: string;
  atMs: number;
}
/**
 * The provider's flag was lifted: its client credentials work again (or the flag named other
 * credentials nobody has reported refused for five minutes). Emitted by the process whose lift ended
 * the flag, once per flag episode across processes.
 */
export interface ProviderRecoveredEvent {
  provider: string;
  atMs: number;
}

export interface WardenEventMap {
  needs_reauth: NeedsReauthEvent;
  recovered: RecoveredEvent;
  refreshed: RefreshedEvent;
  refresh_failed: RefreshFailedEvent;
  provider_misconfigured: ProviderMisconfiguredEvent;
  provider_recovered: ProviderRecoveredEvent;
}
export type WardenEventName = keyof WardenEventMap;

/**
 * What a warden tells its own process. Each change is emitted once, by the
 * process whose transaction made it (episodes are decided inside the store's
 * transaction, so two processes never both announce one `needs_reauth`).
 * A throwing listener is logged, never allowed to break a refresh.
 */
export class WardenEvents {
  readonly #emitter = new EventEmitter();
  readonly #logger: Logger;
  constructor(logger: Logger) {
    this.#logger = logger;
    this.#emitter.setMaxListeners(0);
  }
  on<E extends WardenEventName>(name: E, listener: (event: WardenEventMap[E]) => void): () => void {
    this.#emitter.on(name, listener);
    return () => this.#emitter.off(name, listener);
  }
  off<E extends WardenEventName>(name: E, listener: (event: WardenEventMap[E]) => void): void {
    this.#emitter.off(name, listener);
  }
  emit<E extends WardenEventName>(name: E, event: WardenEventMap[E]): void {
    for (const listener of this.#emitter.listeners(name)) {
      try {
        (listener as (e: WardenEventMap[E]) => void)(event);
      } catch (error) {
        this.#logger.error({ err: error, event: name }, "a warden event listener threw");
      }
    }
  }
}
