import { getEventListeners, once } from "node:events";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestFetch } from "../../src/providers/request-fetch.js";
import { closedPort } from "../helpers/closed-port.js";

let server: Server;
let base: string;
const hanging: ServerResponse[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      if (req.url === "/hang") {
        hanging.push(res);
        return;
      }
      if (req.url === "/chunks") {
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
        res.write("é".repeat(10));
        setTimeout(() => res.end("∑ end"), 5);
        return;
      }
      res.writeHead(429, [
        ["Retry-After", "7"],
        ["X-OAuth-Scopes", "chat:write"],
        ["Set-Cookie", "a=1"],
        ["Set-Cookie", "b=2"],
      ]);
      res.end(JSON.stringify({ method: req.method, type: req.headers["content-type"], body }));
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of hanging) res.destroy();
  server.close();
});

describe("requestFetch", () => {
  it("sends the method, headers and body, and reads status, headers and text", async () => {
    const signal = new AbortController().signal;
    const res = await requestFetch(`${base}/api/x`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "a=1&b=2",
      signal,
    });
    expect(res.status).toBe(429);
    expect(res.ok).toBe(false);
    expect(res.headers.get("retry-after")).toBe("7");
    expect(res.headers.get("X-OAuth-Scopes")).toBe("chat:write");
    expect(res.headers.get("set-cookie")).toBe("a=1, b=2");
    expect(res.headers.get("x-missing")).toBeNull();
    expect(JSON.parse(await res.text())).toEqual({
      method: "POST",
      type: "application/x-www-form-urlencoded",
      body: "a=1&b=2",
    });
    // Many calls share one deadline signal (timeout.ts): a finished call must stop listening to it.
    expect(getEventListeners(signal, "abort")).toHaveLength(0);
  });

  it("joins a body that arrives in several chunks, multi-byte characters intact", async () => {
    const res = await requestFetch(`${base}/chunks`, { method: "GET" });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`${"é".repeat(10)}∑ end`);
  });

  it("rejects with the signal's reason when aborted in flight, and stops listening", async () => {
    const controller = new AbortController();
    const call = requestFetch(`${base}/hang`, { method: "POST", body: "x", signal: controller.signal });
    while (hanging.length === 0) await new Promise((r) => setTimeout(r, 5));
    const reason = new DOMException("deadline", "TimeoutError");
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      requestFetch(`${base}/api/x`, { method: "POST", signal: controller.signal }),
    ).rejects.toMatchObject({ name: "AbortError" });
  });

  it("passes a connection failure through with undici's error code", async () => {
    const port = await closedPort();
    await expect(requestFetch(`http://127.0.0.1:${port}/`, { method: "GET" })).rejects.toMatchObject({
      code: "ECONNREFUSED",
    });
  });
});
