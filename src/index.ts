export type { ErrorCode } from "./core/errors.js";
export { NeedsReauthError, ProviderUnavailableError, TokenwardenError } from "./core/errors.js";
export { Secret } from "./core/secret.js";
export type * from "./core/types.js";
