// createWarden's URLs (publicUrl, the Slack baseUrl, or the variables standing in for them) with a user
// name or password are refused before anything opens, as the server's configuration refuses them: the
// public URL's would be copied into every reconnect link, and fetch refuses such a URL outright.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { parseKeyRing } from "../../src/crypto/key-ring.js";
import { ReconnectLinkSigner } from "../../src/crypto/reconnect-link.js";
import { createWarden, type Warden } from "../../src/engine/warden.js";
import { openSealedStore } from "../helpers/store-under-test.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

const silent = { debug() {}, info() {}, warn() {}, error() {} };
const CREDS = "https://u-name:p-word@example.test";

describe("createWarden with a URL holding credentials", () => {
  let db: TmpSqlite | undefined;
  afterEach(async () => {
    await db?.remove();
    db = undefined;
  });

  it.each([
    ["publicUrl", { publicUrl: CREDS }, {}],
    [
      "providers.slack.baseUrl",
      { providers: { slack: { clientId: "1.2", clientSecret: "s", baseUrl: CREDS } } },
      {},
    ],
    ["TOKENWARDEN_PUBLIC_URL", {}, { TOKENWARDEN_PUBLIC_URL: CREDS }],
    ["SLACK_BASE_URL", {}, { SLACK_CLIENT_ID: "1.2", SLACK_CLIENT_SECRET: "s", SLACK_BASE_URL: CREDS }],
  ])(
    "refuses %s with config_invalid naming it, never echoing the credentials",
    async (name, options, env) => {
      db = await createTmpSqlite();
      const started = createWarden({
        database: `sqlite:${db.path}`,
        encryptionKey: randomBytes(32).toString("base64"),
        env,
        logger: silent,
        ...options,
      });
      const error = await started.then(
        async (w) => {
          await w.close();
          return null;
        },
        (e: unknown) => e as Error & { code?: string },
      );
      expect(error?.code).toBe("config_invalid");
      expect(error?.message).toContain(name);
      expect(error?.message).not.toContain("p-word");
      expect(error?.message).not.toContain("u-name");
    },
  );
});

// A library warden's reconnect links (in its events and NeedsReauthError) are the server's: signed
// with the key ring the warden opened its store with, so `serve` on that store preselects the workspace.
describe("createWarden's reconnect links", () => {
  let db: TmpSqlite | undefined;
  afterEach(async () => {
    await db?.remove();
    db = undefined;
  });

  /** What a warden needs beside its store to hand out reconnect links (its Slack is never reached). */
  const linking = {
    publicUrl: "https://tw.example.com",
    providers: { slack: { clientId: "1.2", clientSecret: "s", baseUrl: "http://127.0.0.1:9" } },
    env: {},
    logger: silent,
  };
  const bare = "https://tw.example.com/oauth/slack/install?connection_id=acme";

  /** Imports "acme" into `warden`, marks it needs_reauth, and closes the warden; its events' reconnect links. */
  async function reconnectLinksOf(warden: Warden): Promise<Array<string | null>> {
    const links: Array<string | null> = [];
    try {
      await warden.connections.import({
        id: "acme",
        provider: "slack",
        credentials: { bot: { accessToken: "xoxb-1", expiresIn: 3_600 } },
      });
      warden.on("needs_reauth", (e) => links.push(e.reconnectUrl));
      await warden.markNeedsReauth("acme", "all", "token_revoked");
    } finally {
      await warden.close();
    }
    return links;
  }

  it("are signed with the encryption key when the warden opens its own store", async () => {
    db = await createTmpSqlite();
    const key = randomBytes(32).toString("base64");
    const warden = await createWarden({ database: `sqlite:${db.path}`, encryptionKey: key, ...linking });
    const links = await reconnectLinksOf(warden);
    const sig = ReconnectLinkSigner.fromKeyRing(parseKeyRing(key)).sign("slack", "acme");
    expect(links).toEqual([`${bare}&sig=${sig}`]);
  });
  it("are signed with the encryption key given beside a store of the caller's own, and bare without it", async () => {
    db = await createTmpSqlite();
    const key = randomBytes(32).toString("base64");
    const links: Array<string | null> = [];
    for (const encryptionKey of [key, undefined]) {
      const warden = await createWarden({
        store: await openSealedStore("sqlite", db.path, key),
        ...(encryptionKey === undefined ? {} : { encryptionKey }),
        ...linking,
      });
      links.push(...(await reconnectLinksOf(warden)));
    }
    const sig = ReconnectLinkSigner.fromKeyRing(parseKeyRing(key)).sign("slack", "acme");
    expect(links).toEqual([`${bare}&sig=${sig}`, bare]);
  });
});
