import { randomBytes, randomInt } from "node:crypto";
import type { Random } from "../core/ports.js";

export const cryptoRandom: Random = {
  next: () => randomInt(0, 2 ** 48) / 2 ** 48,
  token: (bytes) => randomBytes(bytes).toString("base64url"),
};
