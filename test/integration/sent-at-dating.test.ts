// A refresh is dated when its request was sent; its next due time counts from the answer's arrival,
// so a late answer (a slow provider, short-lived tokens) is not stored already due.
import { afterEach, describe, expect, it } from "vitest";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";

describe("a late refresh answer (dated at send time)", () => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("a token stored from a late answer is not already due: the refresher does not spend its refresh token at once", async () => {
    h = await openEngineHarness("sqlite", { emulator: { accessTtlSeconds: 40 } });
    const harness = h;
    const { id } = await h.installAndImport();
    let refreshCalls = 0;
    // The answer travels back slowly: Slack minted the tokens at send time, they arrive 20 s later.
    const slow = (async (input: string | URL | Request, init?: RequestInit) => {
      const res = await fetch(input, init);
      if (String(input).includes("oauth.v2.access")) {
        refreshCalls++;
        harness.clock.advance(20_000);
      }
      return res;
    }) as typeof fetch;
    const w = await h.peer({ fetch: slow });
    h.clock.advance(35_000); // inside the refresh margin
    await w.getToken(id);
    expect(refreshCalls).toBe(1);
    // The fresh token must not be due the moment it is stored (refresh-policy.ts: "a token that was
    // just issued is never already due ... would otherwise make the refresher loop").
    await w.refreshDue();
    expect(refreshCalls).toBe(1);
    // A second call right after gets the fresh token; it does not refresh again.
    await w.getToken(id);
    expect(refreshCalls).toBe(1);
  });
});
