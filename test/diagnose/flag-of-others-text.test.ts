// diagnose connection's "flag of other credentials" cause says when that flag is lifted: after
// STALE_FLAG_MS without a report, whatever that is.
import { afterEach, describe, expect, it } from "vitest";
import { diagnoseConnection } from "../../src/cli/diagnose/diagnose-connection.js";
import { STALE_FLAG_MS } from "../../src/core/provider-flag-times.js";
import { type EngineHarness, openEngineHarness } from "../helpers/engine-harness.js";
import { refusedClient } from "../helpers/store-fixtures.js";

describe("diagnose connection, a flag of other credentials", () => {
  let h: EngineHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  it("says the flag is lifted after STALE_FLAG_MS without a report", async () => {
    h = await openEngineHarness("sqlite");
    const { id } = await h.installAndImport();
    await h.store.setProviderState(
      refusedClient(h.clock.now(), { clientFingerprint: "the-old-secrets", assertedAtMs: h.clock.now() }),
    );
    const { diagnosis } = await diagnoseConnection({
      id,
      store: h.store,
      warden: h.warden,
      baseUrl: h.emu.url,
      nowMs: h.clock.now(),
    });
    const cause = diagnosis.causes.find((c) => c.code === "client_credentials_mismatch");
    expect(cause?.explanation ?? "").toContain(`lifted ${STALE_FLAG_MS / 60_000} minutes after`);
  });
});
