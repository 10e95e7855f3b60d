// A `ProviderUnavailableError` carries the provider's error whenever the caller met one (`http_500`,
// `ratelimited`), on every path: withToken's refresh after token_expired, and getToken's token that
// expires within the second, among others.
import { afterEach, describe, expect, it } from "vitest";
import { ProviderUnavailableError } from "../../src/core/errors.js";
import {
  authTest,
  type EngineHarness,
  importLongerThanSlack,
  openEngineHarness,
} from "../helpers/engine-harness.js";

const HOUR = 3_600_000;

describe("ProviderUnavailableError.providerError on sqlite", () => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("withToken whose refresh after token_expired meets a 5xx: the error names http_500", async () => {
    h = await openEngineHarness("sqlite");
    const { id, install } = await h.installAndImport();
    // Ours says 24 h, Slack's 12 h: past 12 h the call meets token_expired.
    await importLongerThanSlack(h, id, install);
    h.clock.advance(12 * HOUR + 1);
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    const harness = h;
    const err = await h.warden.withToken(id, (token) => authTest(harness, token)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).providerError).toBe("http_500");
  });

  it("getToken of a token expiring within the second whose refresh meets a 5xx: the error names http_500", async () => {
    h = await openEngineHarness("sqlite");
    const { id, install } = await h.installAndImport();
    h.clock.advance(Number(install["expires_in"]) * 1000 - 500); // half a second left
    h.emu.control.fault("oauth.v2.access", { kind: "http_500", times: 1 });
    const err = await h.warden.getToken(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).providerError).toBe("http_500");
  });
});
