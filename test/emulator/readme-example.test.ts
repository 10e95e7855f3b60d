// The README's example test, kept here so the documentation cannot drift from the emulator.
import { WebClient } from "@slack/web-api";
import { afterEach, expect, it } from "vitest";
import { startSlackEmulator } from "../../src/emulator/index.js";

let emu: Awaited<ReturnType<typeof startSlackEmulator>>;
afterEach(() => emu.close());

it("rotates an expired bot token exactly once", async () => {
  emu = await startSlackEmulator();
  const { clientId, clientSecret } = emu.demoApp;
  const install = emu.control.install({ clientId, botScopes: ["chat:write"] });
  const slack = new WebClient(undefined, { slackApiUrl: `${emu.url}/api/` });

  emu.control.advance(43_200); // 12 h later
  await expect(slack.auth.test({ token: install.access_token ?? "" })).rejects.toMatchObject({
    data: { error: "token_expired" },
  });

  const rotated = await slack.oauth.v2.access({
    client_id: clientId,
    client_secret: clientSecret,
    grant_type: "refresh_token",
    refresh_token: install.refresh_token ?? "",
  });
  expect((await slack.auth.test({ token: rotated.access_token ?? "" })).ok).toBe(true);
  expect(emu.control.counters()).toMatchObject({ refreshes: 1, maxPresentations: 1 });
});
