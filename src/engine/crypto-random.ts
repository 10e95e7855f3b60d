import { randomBytes, randomInt } from "node:crypto";
import type { Random } from "../core/ports.js";

export const cryptoRandom: Random = {
  // randomInt caps its range below 2^48.
  next: () => randomInt(0, 2 ** 47) / 2 ** 47,
  token: (bytes) => randomBytes(bytes).toString("base64url"),
};
