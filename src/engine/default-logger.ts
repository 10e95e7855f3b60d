import pino from "pino";
import { TokenwardenError } from "../core/errors.js";
import type { Logger } from "../core/ports.js";

const SECRET_FIELDS = ["accessToken", "refreshToken", "access_token", "refresh_token", "client_secret"];

/** pino's levels, most severe first; `silent` turns logging off. */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_LEVEL_PROBLEM = `must be one of ${LOG_LEVELS.join(", ")}`;

/** A level as pino takes it (any case, spaces around ignored), or null when it is none. */
export function parseLogLevel(raw: string): LogLevel | null {
  const wanted = raw.trim().toLowerCase();
  return LOG_LEVELS.find((l) => l === wanted) ?? null;
}

/**
 * TOKENWARDEN_LOG_LEVEL alone (in any case, as pino takes it), for the logger the library makes
 * when given none: it reads nothing else of the environment. Throws `config_invalid` naming the
 * variable, never its value.
 *
 * @example
 * logLevelFrom({ TOKENWARDEN_LOG_LEVEL: "INFO" }); // "info"
 */
export function logLevelFrom(env: NodeJS.ProcessEnv): LogLevel {
  const raw = env["TOKENWARDEN_LOG_LEVEL"] ?? "";
  if (raw.trim() === "") return "warn";
  const level = parseLogLevel(raw);
  if (level === null)
    throw new TokenwardenError(
      "config_invalid",
      `invalid configuration: TOKENWARDEN_LOG_LEVEL: ${LOG_LEVEL_PROBLEM}`,
    );
  return level;
}

/** pino redact paths for token fields at the top of a log object and one level down. */
export const SECRET_REDACT_PATHS = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`]);

/**
 * The logger when none is given: pino on stderr at TOKENWARDEN_LOG_LEVEL (default `warn`). Its
 * `err` serializer keeps an error's message and stack (JSON.stringify of an Error keeps neither).
 */
export function defaultLogger(env: NodeJS.ProcessEnv): Logger {
  return pino(
    {
      name: "tokenwarden",
      level: logLevelFrom(env),
      // A second belt: Secrets already redact themselves.
      redact: SECRET_REDACT_PATHS,
    },
    pino.destination(2),
  );
}
