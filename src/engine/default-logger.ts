import pino from "pino";
import { logLevelFrom } from "../config.js";
import type { Logger } from "../core/ports.js";

const SECRET_FIELDS = ["accessToken", "refreshToken", "access_token", "refresh_token", "client_secret"];

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
