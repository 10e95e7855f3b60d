import type { IncomingHttpHeaders } from "node:http";
import { getGlobalDispatcher } from "undici";

/**
 * The slice of `fetch` the providers use (status, headers.get, text), over
 * undici's dispatcher. WHATWG `fetch` builds streams, a Request and a Response
 * per call; in a refresh storm that machinery was a fifth of our CPU and
 * doubled the provider call latency (bench/engine.bench.ts: 770 → 1,019
 * refreshes/s, 21 → 10 ms per call). The origin and path of each URL are split
 * once, and response headers are read from undici's plain object instead of
 * being copied into a `Headers`. Errors pass through as undici raises them
 * (`code` such as ECONNREFUSED, or the abort), which `classifyTransportError`
 * reads.
 */
export async function requestFetch(input: string, init: RequestInit): Promise<Response> {
  const { origin, path } = splitUrl(input);
  const res = await getGlobalDispatcher().request({
    origin,
    path,
    method: (init.method ?? "GET") as "GET",
    headers: (init.headers ?? {}) as Record<string, string>,
    body: typeof init.body === "string" ? init.body : init.body == null ? null : String(init.body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.body.text();
  const status = res.statusCode;
  return {
    status,
    ok: status >= 200 && status < 300,
    headers: new PlainHeaders(res.headers),
    text: async () => text,
    json: async () => JSON.parse(text) as unknown,
  } as unknown as Response;
}

/** `Headers.get` over undici's header object (names arrive lowercased; repeats joined as fetch does). */
class PlainHeaders {
  readonly #raw: IncomingHttpHeaders;
  constructor(raw: IncomingHttpHeaders) {
    this.#raw = raw;
  }
  get(name: string): string | null {
    const value = this.#raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(", ") : value;
  }
}

// A provider calls a handful of URLs over and over: parse each once. Bounded all the same.
const SPLIT_LIMIT = 256;
const splits = new Map<string, { origin: string; path: string }>();

function splitUrl(input: string): { origin: string; path: string } {
  let split = splits.get(input);
  if (split === undefined) {
    const url = new URL(input);
    split = { origin: url.origin, path: `${url.pathname}${url.search}` };
    if (splits.size >= SPLIT_LIMIT) splits.clear();
    splits.set(input, split);
  }
  return split;
}
