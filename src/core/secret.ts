const INSPECT = Symbol.for("nodejs.util.inspect.custom");

/**
 * A token in memory. It prints as `[redacted]` everywhere (JSON, string
 * interpolation, `util.inspect`, pino), so a stray `log.info({ credential })`
 * cannot leak it. `reveal()` is the one way out, and is easy to grep for.
 *
 * @example
 * const s = new Secret("xoxb-…");
 * JSON.stringify({ s }); // '{"s":"[redacted]"}'
 * s.reveal();            // "xoxb-…"
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return "[redacted]";
  }
  toString(): string {
    return "[redacted]";
  }
  [INSPECT](): string {
    return "Secret([redacted])";
  }
}
