import { request } from "undici";

/**
 * The slice of `fetch` the providers use (status, headers, text), over undici's
 * `request`. WHATWG `fetch` builds streams, a Request and a Response per call;
 * in a refresh storm that machinery was a fifth of our CPU and doubled the
 * provider call latency (bench/engine.bench.ts: 770 → 1,019 refreshes/s,
 * 21 → 10 ms per call). Errors pass through as undici raises them (`code`
 * such as ECONNREFUSED, or the abort), which `classifyTransportError` reads.
 */
export async function requestFetch(input: string, init: RequestInit): Promise<Response> {
  const res = await request(input, {
    method: (init.method ?? "GET") as "GET",
    headers: (init.headers ?? {}) as Record<string, string>,
    body: typeof init.body === "string" ? init.body : init.body == null ? null : String(init.body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.body.text();
  const headers = new Headers();
  for (const [name, value] of Object.entries(res.headers)) {
    if (typeof value === "string") headers.set(name, value);
    else if (Array.isArray(value)) headers.set(name, value.join(", "));
  }
  const status = res.statusCode;
  return {
    status,
    ok: status >= 200 && status < 300,
    headers,
    text: async () => text,
    json: async () => JSON.parse(text) as unknown,
  } as Response;
}
