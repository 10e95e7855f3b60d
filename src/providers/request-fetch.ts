import { type Dispatcher, getGlobalDispatcher } from "undici";

/**
 * The slice of `fetch` the providers use (status, headers.get, text), over
 * undici's dispatcher. WHATWG `fetch` builds streams, a Request and a Response
 * per call; in a refresh storm that machinery was a fifth of our CPU and
 * doubled the provider call latency (bench/engine.bench.ts: 770 → 1,019
 * refreshes/s, 21 → 10 ms per call). `dispatcher.request()` still builds a
 * Readable per response; a token endpoint's answer is a few hundred bytes, so
 * the body is gathered by a plain handler instead (a tenth to a fifth less
 * client CPU per call than `request()` + `body.text()`, probe against a local
 * server). The
 * origin and path of each URL are split once, and response headers are read
 * from undici's raw list instead of being copied into a `Headers`. Errors pass
 * through as undici raises them (`code` such as ECONNREFUSED, or the abort),
 * which `classifyTransportError` reads.
 */
export function requestFetch(input: string, init: RequestInit): Promise<Response> {
  const { origin, path } = splitUrl(input);
  const signal = init.signal ?? null;
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  return new Promise<Response>((resolve, reject) => {
    const handler = new CollectingHandler(signal, resolve, reject);
    // The handler API both undici 6 (bundled with Node, installed by a first `fetch`) and 7 accept.
    try {
      getGlobalDispatcher().dispatch(
        {
          origin,
          path,
          method: (init.method ?? "GET") as Dispatcher.HttpMethod,
          headers: (init.headers ?? {}) as Record<string, string>,
          body: typeof init.body === "string" ? init.body : init.body == null ? null : String(init.body),
        },
        handler as unknown as Dispatcher.DispatchHandler,
      );
    } catch (error) {
      handler.onError(error); // invalid options are refused synchronously
    }
  });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}

/** Gathers one response; settles once, and stops listening to the signal when it does. */
class CollectingHandler {
  readonly #signal: AbortSignal | null;
  readonly #resolve: (res: Response) => void;
  readonly #reject: (error: unknown) => void;
  #abort: ((reason?: unknown) => void) | null = null;
  #status = 0;
  #headers: Array<Buffer | string> = [];
  #chunks: Buffer[] = [];
  #settled = false;
  readonly #onAbort = () => {
    // Before the connection is assigned, undici has no abort to call yet: onConnect calls it.
    if (this.#abort !== null) this.#abort(abortReason(this.#signal as AbortSignal));
  };

  constructor(
    signal: AbortSignal | null,
    resolve: (res: Response) => void,
    reject: (error: unknown) => void,
  ) {
    this.#signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
    signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  onConnect(abort: (reason?: unknown) => void): void {
    this.#abort = abort;
    if (this.#signal?.aborted) abort(abortReason(this.#signal));
  }

  onHeaders(statusCode: number, rawHeaders: Array<Buffer | string>): boolean {
    this.#status = statusCode;
    this.#headers = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.#chunks.push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.#finish()) return;
    const chunks = this.#chunks;
    const text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString("utf8");
    const status = this.#status;
    this.#resolve({
      status,
      ok: status >= 200 && status < 300,
      headers: new RawHeaders(this.#headers),
      text: async () => text,
      json: async () => JSON.parse(text) as unknown,
    } as unknown as Response);
  }

  onError(error: unknown): void {
    if (this.#finish()) return;
    this.#reject(error);
  }

  onUpgrade(): void {
    this.onError(new Error("unexpected protocol upgrade"));
  }

  /** Marks the call settled; true if it already was. */
  #finish(): boolean {
    if (this.#settled) return true;
    this.#settled = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    return false;
  }
}

/** `Headers.get` over undici's raw header list (repeats joined as fetch does). */
class RawHeaders {
  readonly #raw: Array<Buffer | string>;
  constructor(raw: Array<Buffer | string>) {
    this.#raw = raw;
  }
  get(name: string): string | null {
    const wanted = name.toLowerCase();
    let value: string | null = null;
    for (let i = 0; i + 1 < this.#raw.length; i += 2) {
      const key = this.#raw[i] as Buffer | string;
      if (key.length !== wanted.length || key.toString().toLowerCase() !== wanted) continue;
      const v = (this.#raw[i + 1] as Buffer | string).toString();
      value = value === null ? v : `${value}, ${v}`;
    }
    return value;
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
