// Client authentication for oauth.v2.access / oauth.v2.exchange / apps.uninstall (slack-api.md §2.3.1):
// HTTP Basic (python, java SDKs) or body params (node SDK). When both are sent the header wins [U] (§10.11).
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { stringArg } from "./http-io.js";

export interface ClientCredentials {
  clientId: string | undefined;
  clientSecret: string | undefined;
}

export function clientCredentials(req: IncomingMessage, args: Record<string, unknown>): ClientCredentials {
  const header = req.headers.authorization;
  if (header?.startsWith("Basic ")) {
    const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon >= 0) {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before being joined.
      return {
        clientId: formDecoded(decoded.slice(0, colon)),
        clientSecret: formDecoded(decoded.slice(colon + 1)),
      };
    }
  }
  return { clientId: stringArg(args, "client_id"), clientSecret: stringArg(args, "client_secret") };
}

/** A broken escape is left as sent: it then matches no client, as a wrong credential would. */
function formDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Constant-time comparison of secrets (DESIGN invariant 5 applies to the emulator's secrets too). */
export function secretsEqual(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
