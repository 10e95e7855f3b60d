import { InvalidArgumentError } from "commander";

/** A commander parser for an integer option of at least `min`; the message names the option. */
export function integerOption(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
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
