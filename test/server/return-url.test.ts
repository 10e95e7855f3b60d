// The redirect back to an app's return_url names the connection the browser's flow produced. An app
// binds it to the user who came back; signed, a crafted `?connection_id=<someone else's>` is refused.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyReturnUrl } from "../../src/server/return-url.js";
import { verifyWebhook } from "../../src/server/webhooks/signature.js";
import { hop, installViaBrowser, openServerHarness, type ServerHarness } from "./server-harness.js";

const APP = "https://app.example.com";
const SECRET = "whsec_return_0123456789abcdef0123456789"; // ≥ 32 characters: redirects are signed

async function installBack(h: ServerHarness, startUrl: string): Promise<string> {
  const team = h.emu.control.createTeam({ name: `Team ${Math.random()}` });
  h.emu.control.createUser(team.teamId); // the installing user
  h.emu.control.setAuthorize({ mode: "approve", teamId: team.teamId });
  const back = await installViaBrowser(h, startUrl);
  expect(back.status).toBe(303);
  return back.headers.get("location") ?? "";
}

describe("with TOKENWARDEN_WEBHOOK_SECRET (and no webhook URL)", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite", {
      env: { TOKENWARDEN_WEBHOOK_SECRET: SECRET, TOKENWARDEN_RETURN_URL_ORIGINS: APP },
    });
  });
  afterAll(async () => {
    await h?.close();
  });
  // The app's check runs on its own clock; the harness's fake clock is the server's host clock.
  const verify = (url: string) => verifyReturnUrl({ secret: SECRET, url, nowMs: h.clock.now() });

  it("signs the redirect of a plain install link, over the app's own parameters too", async () => {
    const ret = encodeURIComponent(`${APP}/slack/done?nonce=user-42`);
    const location = await installBack(h, `${h.server.url}/oauth/slack/install?return_url=${ret}`);
    const q = new URL(location).searchParams;
    expect(location.startsWith(`${APP}/slack/done?`)).toBe(true);
    expect(q.get("nonce")).toBe("user-42");
    expect(q.get("status")).toBe("installed");
    expect(verify(location)).toBe(true);
    expect(verify(location.replace(`connection_id=${q.get("connection_id")}`, "connection_id=T0THER"))).toBe(
      false,
    );
    expect(verify(location.replace("nonce=user-42", "nonce=user-7"))).toBe(false);
  });

  it("signs the redirect of a connect session", async () => {
    const res = await h.api("/v1/connect-sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ return_url: `${APP}/settings?nonce=s-1` }),
    });
    expect(res.status).toBe(201);
    const { url } = (await res.json()) as { url: string };
    const location = await installBack(h, url);
    expect(new URL(location).searchParams.get("nonce")).toBe("s-1");
    expect(verify(location)).toBe(true);
  });

  it("signs a cancelled install's redirect", async () => {
    h.emu.control.setAuthorize({ mode: "deny" });
    const ret = encodeURIComponent(`${APP}/slack/done?nonce=user-9`);
    const start = await hop(`${h.server.url}/oauth/slack/install?return_url=${ret}`);
    const denied = await hop(start.headers.get("location") ?? "");
    const back = await hop(denied.headers.get("location") ?? "");
    expect(back.status).toBe(303);
    const location = back.headers.get("location") ?? "";
    expect(new URL(location).searchParams.get("error")).toBe("access_denied");
    expect(verify(location)).toBe(true);
  });

  // Parameters of ours planted in the return_url by whoever writes an install link (anyone can) must not
  // come back inside what is signed: a cancelled install's signature would vouch for them.
  it("drops a connection_id planted in the return_url, so a cancel's signature never vouches for it", async () => {
    h.emu.control.setAuthorize({ mode: "deny" });
    // An attacker's own link, with their own nonce, naming a victim's workspace.
    const ret = encodeURIComponent(
      `${APP}/slack/done?nonce=attacker&connection_id=T0VICTIM&status=installed`,
    );
    const start = await hop(`${h.server.url}/oauth/slack/install?return_url=${ret}`);
    const denied = await hop(start.headers.get("location") ?? "");
    const back = await hop(denied.headers.get("location") ?? "");
    expect(back.status).toBe(303);
    const location = back.headers.get("location") ?? "";
    expect(verifyReturnUrl({ secret: SECRET, url: location, nowMs: h.clock.now() })).toBe(true);
    const q = new URL(location).searchParams;
    expect(q.get("error")).toBe("access_denied");
    expect(q.get("nonce")).toBe("attacker");
    expect(q.has("connection_id")).toBe(false);
    expect(q.has("status")).toBe(false);
  });

  // The webhook secret signs both; whoever writes an install link chooses most of the query signed, so
  // the redirect's signature must not be one a webhook receiver would accept for a body of their making.
  it("signs with a key of its own: a redirect is never a valid webhook signature, whatever the return_url holds", async () => {
    // No Slack needed: the state from our own redirect, then the callback a cancel would bring.
    const ts = String(Math.floor(h.clock.now() / 1000));
    const ret = encodeURIComponent(`${APP}/x?${ts}.type=connection.revoked&data%5Bconnection_id%5D=T0VICTIM`);
    const start = await hop(`${h.server.url}/oauth/slack/install?return_url=${ret}`);
    const state = new URL(start.headers.get("location") ?? "").searchParams.get("state") ?? "";
    const back = await hop(
      `${h.server.url}/oauth/slack/callback?error=access_denied&state=${encodeURIComponent(state)}`,
    );
    const location = back.headers.get("location") ?? "";
    expect(verifyReturnUrl({ secret: SECRET, url: location, nowMs: h.clock.now() })).toBe(true);
    const query = new URL(location).search.slice(1);
    const at = query.lastIndexOf("&tw_signature=");
    const signed = query.slice(0, at);
    // Replayed as a form-encoded POST to the webhook receiver: X-Tokenwarden-Timestamp is the
    // digits before the first dot, the body everything after it.
    const body = signed.slice(signed.indexOf(".") + 1);
    expect(body.startsWith("type=connection.revoked&")).toBe(true);
    expect(
      verifyWebhook({
        secret: SECRET,
        body,
        timestampHeader: ts,
        signatureHeader: query.slice(at + "&tw_signature=".length),
        nowMs: h.clock.now(),
      }),
    ).toBe(false);
  });
});

// Anyone can have a redirect signed, so a short secret could be guessed offline from them (and
// then sign webhooks): one shorter than 32 characters signs webhooks only, and startup says so.
describe("with a TOKENWARDEN_WEBHOOK_SECRET shorter than 32 characters", () => {
  let h: ServerHarness;
  const warnings: string[] = [];
  beforeAll(async () => {
    h = await openServerHarness("sqlite", {
      env: {
        TOKENWARDEN_WEBHOOK_SECRET: "short-secret-31-characters-long",
        TOKENWARDEN_RETURN_URL_ORIGINS: APP,
      },
      server: {
        logger: {
          debug() {},
          info() {},
          warn: (_obj: object, msg?: string) => void warnings.push(msg ?? ""),
          error() {},
        },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("leaves the redirect unsigned, and warned at startup naming the variable, not its value", async () => {
    const ret = encodeURIComponent(`${APP}/slack/done`);
    const location = await installBack(h, `${h.server.url}/oauth/slack/install?return_url=${ret}`);
    expect(new URL(location).searchParams.has("tw_signature")).toBe(false);
    const warning = warnings.find((w) => w.includes("TOKENWARDEN_WEBHOOK_SECRET"));
    expect(warning).toContain("unsigned");
    expect(warning).not.toContain("short-secret");
  });
});

describe("without a secret", () => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { env: { TOKENWARDEN_RETURN_URL_ORIGINS: APP } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("leaves the redirect unsigned, as before", async () => {
    const ret = encodeURIComponent(`${APP}/slack/done`);
    const location = await installBack(h, `${h.server.url}/oauth/slack/install?return_url=${ret}`);
    const q = new URL(location).searchParams;
    expect(q.get("status")).toBe("installed");
    expect(q.has("tw_signature")).toBe(false);
    expect(q.has("tw_timestamp")).toBe(false);
  });
});
