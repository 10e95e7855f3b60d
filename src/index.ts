export type { ErrorCode } from "./core/errors.js";
export { NeedsReauthError, ProviderUnavailableError, TokenwardenError } from "./core/errors.js";
export type { Clock, Logger, Provider, Random, Sealer, Store } from "./core/ports.js";
export type { RefreshPolicy } from "./core/refresh-policy.js";
export { Secret } from "./core/secret.js";
export type * from "./core/types.js";
export { generateKey } from "./crypto/key-ring.js";
export type { EngineTimings } from "./engine/context.js";
export type { AccessToken, GetTokenOptions } from "./engine/get-token.js";
export type { ImportInput } from "./engine/import-input.js";
export type { RefresherOptions } from "./engine/refresher.js";
export {
  createWarden,
  type RefreshBacklogReport,
  type SlackProviderOptions,
  type Warden,
  type WardenOptions,
  type WardenProviderState,
} from "./engine/warden.js";
export type * from "./engine/warden-events.js";
export type { WithTokenOptions } from "./engine/with-token.js";
