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
  #value: string | (() => string);
  constructor(value: string) {
    this.#value = value;
  }

  /**
   * A secret produced on its first `reveal()` (a sealed value opened only if
   * it is used); a failure to produce it is thrown there.
   */
  static deferred(produce: () => string): Secret {
    const secret = new Secret("");
    secret.#value = produce;
    return secret;
  }

  reveal(): string {
    const value = this.#value;
    if (typeof value === "string") return value;
    const produced = value();
    this.#value = produced;
    return produced;
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
