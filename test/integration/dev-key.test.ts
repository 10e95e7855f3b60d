// A library or server start without TOKENWARDEN_ENCRYPTION_KEY: a development key file is generated
// beside a new database, never beside one whose connections were sealed with a key this process
// lacks (it would open nothing, and every later start would pick it up).
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createWarden } from "../../src/engine/warden.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

const slack = { clientId: "1.2", clientSecret: "s", baseUrl: "http://127.0.0.1:9" };
const silent = { debug() {}, info() {}, warn() {}, error() {} };
const keyFile = (db: TmpSqlite) => join(dirname(db.path), ".tokenwarden-dev-key");

describe("createWarden without an encryption key", () => {
  let db: TmpSqlite | undefined;
  afterEach(async () => {
    await db?.remove();
    db = undefined;
  });

  it("on a database holding connections: config_invalid naming the variable, and no key file written", async () => {
    db = await createTmpSqlite();
    const keyed = await createWarden({
      database: `sqlite:${db.path}`,
      encryptionKey: randomBytes(32).toString("base64"),
      providers: { slack },
      env: {},
      logger: silent,
    });
    await keyed.connections.import({
      id: "T1",
      provider: "slack",
      credentials: { bot: { accessToken: "xoxb-1", expiresIn: 3_600 } },
    });
    await keyed.close();
    await expect(
      createWarden({ database: `sqlite:${db.path}`, providers: { slack }, env: {}, logger: silent }),
    ).rejects.toMatchObject({
      code: "config_invalid",
      message: expect.stringContaining("TOKENWARDEN_ENCRYPTION_KEY"),
    });
    expect(existsSync(keyFile(db))).toBe(false);
  });

  it("on a new database: generates the key file, with a warning", async () => {
    db = await createTmpSqlite();
    const warned: string[] = [];
    const w = await createWarden({
      database: `sqlite:${db.path}`,
      providers: { slack },
      env: {},
      logger: { ...silent, warn: (_o: object, msg?: string) => void warned.push(msg ?? "") },
    });
    await w.close();
    expect(existsSync(keyFile(db))).toBe(true);
    expect(warned.join("\n")).toContain("generated a development key file");
  });
});
