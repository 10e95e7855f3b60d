/**
 * Every route declares its inputs as zod schemas here; handlers parse with
 * them and `/openapi.json` is generated from the same objects, so the
 * document cannot drift from what is enforced.
 */
import type { z } from "zod";
import { TokenwardenError } from "../core/errors.js";

export type HttpMethod = "GET" | "POST" | "DELETE" | "PUT" | "PATCH";

export interface RouteSpec {
  method: HttpMethod | "ANY";
  /** Fastify syntax: `/v1/connections/:id`. */
  url: string;
  summary: string;
  tag: string;
  /** Needs `Authorization: Bearer <API key>`. */
  auth: boolean;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** The 2xx body, for the document only. */
  response?: z.ZodType;
  /** Content type of the 2xx answer when not JSON. */
  produces?: string;
}

export class RouteBook {
  readonly specs: RouteSpec[] = [];
  add(spec: RouteSpec): RouteSpec {
    this.specs.push(spec);
    return spec;
  }
}

/** Parses untrusted input; the message names fields and rules, never echoes a value (it may be a token). */
export function parseInput<S extends z.ZodType>(schema: S, data: unknown, where: string): z.output<S> {
  const r = schema.safeParse(data ?? {});
  if (r.success) return r.data;
  const detail = r.error.issues
    .slice(0, 5)
    .map((i) => `${[where, ...i.path.map(String)].join(".")}: ${i.message}`)
    .join("; ");
  throw new TokenwardenError("invalid_input", detail);
}
