// The Slack emulator's public entry point (`tokenwarden/emulator`).

export type { AuthorizeSettings } from "./slack/context.js";
export type { AppCredentials, SlackEmulatorControl, TeamInfo } from "./slack/control.js";
export type { EmulatorCounters, EmulatorCounterTotals } from "./slack/counters.js";
export type { Delivery, DeliveryAttempt } from "./slack/events.js";
export { signSlackRequest } from "./slack/events.js";
export type { FaultKind, FaultSpec } from "./slack/faults.js";
export type { SlackEmulator, SlackEmulatorOptions } from "./slack/server.js";
export { startSlackEmulator } from "./slack/server.js";
export type {
  CreateAppOptions,
  InstallOptions,
  InstallResponse,
  TokenInfo,
  TokenState,
} from "./slack/state.js";
