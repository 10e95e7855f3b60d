import { describe, expect, it } from "vitest";
import { SingleFlight } from "../../src/core/single-flight.js";

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("SingleFlight", () => {
  it("gives a second caller for the same key the same promise", async () => {
    const flights = new SingleFlight<string>();
    const d = deferred<string>();
    let calls = 0;
    const fn = () => {
      calls++;
      return d.promise;
    };
    const a = flights.run("k", fn);
    const b = flights.run("k", fn);
    expect(a).toBe(b);
    expect(flights.has("k")).toBe(true);
    d.resolve("token");
    expect(await Promise.all([a, b])).toEqual(["token", "token"]);
    expect(calls).toBe(1);
    expect(flights.size).toBe(0);
  });

  it("keeps different keys apart", async () => {
    const flights = new SingleFlight<string>();
    const [a, b] = await Promise.all([flights.run("a", async () => "A"), flights.run("b", async () => "B")]);
    expect([a, b]).toEqual(["A", "B"]);
  });

  it("removes the entry on rejection, sharing the rejection with every joiner", async () => {
    const flights = new SingleFlight<string>();
    const d = deferred<string>();
    const a = flights.run("k", () => d.promise);
    const b = flights.run("k", () => Promise.resolve("never"));
    d.reject(new Error("boom"));
    await expect(a).rejects.toThrow("boom");
    await expect(b).rejects.toThrow("boom");
    expect(flights.has("k")).toBe(false);
    expect(await flights.run("k", async () => "again")).toBe("again");
  });

  it("turns a synchronous throw into a rejection and cleans up", async () => {
    const flights = new SingleFlight<string>();
    await expect(
      flights.run("k", () => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
    expect(flights.size).toBe(0);
  });
});
