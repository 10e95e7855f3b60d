/**
 * `/openapi.json`, generated from the zod schemas the routes parse with
 * (route-book.ts), so the document describes exactly what is enforced.
 */
import { z } from "zod";
import type { RouteBook } from "./route-book.js";

const ErrorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string() }).loose(),
});

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  // io "input": describes what a client sends (defaults and coercions not yet applied).
  const s = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  delete s["$schema"];
  return s;
}

function parametersOf(schema: z.ZodType | undefined, where: "path" | "query"): unknown[] {
  if (schema === undefined) return [];
  const s = jsonSchema(schema) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(s.properties ?? {})
    .filter(([name]) => name !== "*")
    .map(([name, p]) => ({
      name,
      in: where,
      required: where === "path" || (s.required ?? []).includes(name),
      schema: p,
    }));
}

export function openApiDocument(book: RouteBook, info: { version: string; serverUrl: string }): object {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of book.specs) {
    const path = spec.url.replace(/:([A-Za-z_]+)/g, "{$1}").replace(/\*$/, "{method}");
    const extraPath = spec.url.endsWith("*")
      ? [
          {
            name: "method",
            in: "path",
            required: true,
            schema: { type: "string" },
            description: "Slack Web API method",
          },
        ]
      : [];
    const operation: Record<string, unknown> = {
      summary: spec.summary,
      tags: [spec.tag],
      parameters: [...parametersOf(spec.params, "path"), ...extraPath, ...parametersOf(spec.query, "query")],
      ...(spec.auth ? { security: [{ apiKey: [] }] } : { security: [] }),
      ...(spec.body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: { "application/json": { schema: jsonSchema(spec.body) } },
            },
          }),
      responses: {
        "2XX": spec.produces
          ? { description: "OK", content: { [spec.produces]: {} } }
          : {
              description: "OK",
              content: { "application/json": { schema: spec.response ? jsonSchema(spec.response) : {} } },
            },
        "4XX": {
          description: "Client error",
          content: { "application/json": { schema: jsonSchema(ErrorSchema) } },
        },
      },
    };
    const methods = spec.method === "ANY" ? ["get", "post"] : [spec.method.toLowerCase()];
    paths[path] ??= {};
    for (const m of methods) (paths[path] as Record<string, unknown>)[m] = operation;
  }
  return {
    openapi: "3.1.0",
    info: { title: "tokenwarden", version: info.version },
    servers: [{ url: info.serverUrl }],
    components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer" } } },
    paths,
  };
}
