import { chmod, mkdtemp, open, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import { loadOrCreateDevKey, resolveEncryptionKey } from "../../src/crypto/dev-key-file.js";
import { generateKey, parseKeyRing } from "../../src/crypto/key-ring.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "tw-key-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadOrCreateDevKey", () => {
  it("creates a 0600 file with a valid key once, then reuses it", async () => {
    const path = join(dir, "nested", "dev.key");
    const first = await loadOrCreateDevKey(path);
    expect(first.created).toBe(true);
    expect(parseKeyRing(first.value)).toHaveLength(1);
    if (process.platform !== "win32") expect((await stat(path)).mode & 0o777).toBe(0o600);
    const second = await loadOrCreateDevKey(path);
    expect(second).toEqual({ value: first.value, created: false });
  });

  // Some file systems cannot sync a directory (CIFS/Samba shares, some FUSE and network volumes answer
  // EINVAL or ENOTSUP): the key file is in place by then, so the start must not fail claiming it was
  // never created (and then read it, as created by someone else, on the next start).
  it("a directory that cannot be synced: the key is created and handed out all the same", async () => {
    const probe = await open(join(dir, "probe"), "w");
    const proto = Object.getPrototypeOf(probe) as {
      sync(): Promise<void>;
      stat(): Promise<{ isDirectory(): boolean }>;
    };
    await probe.close();
    const original = proto.sync;
    for (const code of ["EINVAL", "ENOTSUP"]) {
      const syncs = vi.spyOn(proto, "sync").mockImplementation(async function (this: typeof proto) {
        if ((await this.stat()).isDirectory())
          throw Object.assign(new Error(`${code}: operation not supported, fsync`), { code });
        return original.call(this);
      });
      try {
        const path = join(dir, code, "dev.key");
        const created = await loadOrCreateDevKey(path);
        expect(created.created).toBe(true);
        expect(await loadOrCreateDevKey(path)).toEqual({ value: created.value, created: false });
      } finally {
        syncs.mockRestore();
      }
    }
  });

  it("is on disk, name and content, before the key is handed out", async () => {
    const probe = await open(join(dir, "probe"), "w");
    const syncs = vi.spyOn(Object.getPrototypeOf(probe) as { sync(): Promise<void> }, "sync");
    await probe.close();
    try {
      await loadOrCreateDevKey(join(dir, "dev.key"));
      expect(syncs).toHaveBeenCalledTimes(process.platform === "win32" ? 1 : 2); // the file, then its directory
      syncs.mockClear();
      await loadOrCreateDevKey(join(dir, "dev.key"));
      expect(syncs).not.toHaveBeenCalled();
    } finally {
      syncs.mockRestore();
    }
  });

  it("asks before creating, never before reading; a refusal writes nothing", async () => {
    const path = join(dir, "dev.key");
    const refuse = async () => {
      throw new TokenwardenError("config_invalid", "not here");
    };
    await expect(loadOrCreateDevKey(path, refuse)).rejects.toThrow("not here");
    await expect(stat(path)).rejects.toMatchObject({ code: "ENOENT" });
    const created = await loadOrCreateDevKey(path);
    expect(await loadOrCreateDevKey(path, refuse)).toEqual({ value: created.value, created: false });
  });

  it("gives every concurrent caller the same key", async () => {
    const path = join(dir, "dev.key");
    const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateDevKey(path)));
    expect(new Set(results.map((r) => r.value)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
  });

  it.skipIf(process.platform === "win32")("refuses a key file others can read", async () => {
    const path = join(dir, "dev.key");
    const key = generateKey();
    await writeFile(path, key);
    await chmod(path, 0o644);
    const error = await loadOrCreateDevKey(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenwardenError);
    expect((error as TokenwardenError).message).toMatch(/mode 644.*chmod 600/);
    expect((error as TokenwardenError).message).not.toContain(key);
  });
});

describe("resolveEncryptionKey", () => {
  it("prefers the environment", async () => {
    const key = generateKey();
    const resolved = await resolveEncryptionKey({
      envValue: key,
      nodeEnv: "production",
      devKeyPath: join(dir, "k"),
    });
    expect(resolved.source).toBe("environment");
    expect(resolved.keys[0]?.key.toString("base64")).toBe(key);
  });

  it("refuses to run in production without a key", async () => {
    for (const envValue of [undefined, "", "  "]) {
      const error = await resolveEncryptionKey({
        envValue,
        nodeEnv: "production",
        devKeyPath: join(dir, "k"),
      }).catch((e: unknown) => e);
      expect((error as TokenwardenError).code).toBe("config_invalid");
      expect((error as TokenwardenError).message).toMatch(
        /TOKENWARDEN_ENCRYPTION_KEY is required when NODE_ENV=production/,
      );
    }
  });

  it("falls back to a development key file and says it created one", async () => {
    const devKeyPath = join(dir, "k");
    const first = await resolveEncryptionKey({ envValue: undefined, nodeEnv: "development", devKeyPath });
    expect(first).toMatchObject({ source: "dev_key_file", devKeyCreated: true, devKeyPath });
    const again = await resolveEncryptionKey({ envValue: undefined, nodeEnv: undefined, devKeyPath });
    expect(again.devKeyCreated).toBe(false);
    expect(again.keys[0]?.id).toBe(first.keys[0]?.id);
  });
});
