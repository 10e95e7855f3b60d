import { InvalidArgumentError } from "commander";

/** A commander parser for an integer option from `min` (to `max`); the message names the option. */
export function integerOption(name: string, min: number, max?: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < min || (max !== undefined && n > max))
      throw new InvalidArgumentError(
        max === undefined
          ? `${name} must be an integer ≥ ${min}`
          : `${name} must be an integer from ${min} to ${max}`,
      );
    return n;
  };
}

/** `--port`: 0 (any free port) to 65535. */
export function portOption(value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError("--port must be 0-65535");
  return n;
}
