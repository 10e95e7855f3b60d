// Request parsing and reply writing for Slack's Web API transport (slack-api.md §4.1).
import type { IncomingMessage, ServerResponse } from "node:http";

/** Bodies above this are cut off; Slack's own limits are larger but no emulated method needs more. */
const MAX_BODY_BYTES = 1 << 20;

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Arguments of a Web API call: body params (form or JSON) over query params. */
export interface ParsedArgs {
  args: Record<string, unknown>;
  /** `token` from a form body (never from JSON or the query: §4.1). */
  bodyToken: string | null;
  queryToken: string | null;
}

/**
 * Parses query and body the way §4.1 describes, or names the body error of §4.6 step 2
 * (`missing_post_type`, `invalid_post_type`, `invalid_charset`, `invalid_json`, `json_not_object`,
 * `invalid_form_data`).
 */
export function parseArgs(
  contentType: string | undefined,
  query: URLSearchParams,
  body: Buffer,
): { ok: true; value: ParsedArgs } | { ok: false; error: string } {
  const args: Record<string, unknown> = {};
  let queryToken: string | null = null;
  for (const [k, v] of query) {
    if (k === "token") queryToken = v;
    else args[k] = v;
  }
  let bodyToken: string | null = null;
  if (body.length > 0) {
    if (contentType === undefined || contentType === "") return { ok: false, error: "missing_post_type" };
    const [mediaRaw, ...params] = contentType.split(";");
    const media = (mediaRaw ?? "").trim().toLowerCase();
    for (const p of params) {
      const [name, value] = p.split("=").map((s) => s.trim().toLowerCase());
      if (name === "charset" && value !== undefined) {
        const charset = value.replace(/^"|"$/g, "");
        if (charset !== "utf-8" && charset !== "utf8" && charset !== "iso-8859-1") {
          return { ok: false, error: "invalid_charset" };
        }
      }
    }
    if (media === "application/x-www-form-urlencoded" || media === "text/plain") {
      for (const [k, v] of new URLSearchParams(body.toString("utf8"))) {
        if (k === "token") bodyToken = v;
        else args[k] = v;
      }
    } else if (media === "application/json") {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch {
        return { ok: false, error: "invalid_json" };
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        return { ok: false, error: "json_not_object" };
      }
      // With a JSON body the token must travel in the header (§4.1): a `token` key is just ignored.
      for (const [k, v] of Object.entries(parsed)) if (k !== "token") args[k] = v;
    } else if (media === "multipart/form-data") {
      // Slack accepts multipart, but no emulated method needs it (only file uploads do).
      return { ok: false, error: "invalid_form_data" };
    } else {
      return { ok: false, error: "invalid_post_type" };
    }
  }
  return { ok: true, value: { args, bodyToken, queryToken } };
}

/** A string argument, or undefined for absent/empty/non-string values. */
export function stringArg(args: Record<string, unknown>, name: string): string | undefined {
  const v = args[name];
  if (typeof v === "string") return v === "" ? undefined : v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

const JSON_TYPE = "application/json; charset=utf-8";

export function sendJson(
  res: ServerResponse,
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": JSON_TYPE, "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendHtml(res: ServerResponse, html: string, status = 200): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(html),
  });
  res.end(html);
}

export function redirect(res: ServerResponse, location: string): void {
  res.writeHead(302, { location, "content-length": 0 });
  res.end();
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
