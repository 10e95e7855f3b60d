// What Bolt's InstallationStore saves for an install: the `Installation` that @slack/oauth's own
// InstallProvider builds in handleCallback (the real SDK, against the emulator), as a JSON store
// writes it (undefined fields left out).
import { type Installation, InstallProvider, LogLevel } from "@slack/oauth";
import { vi } from "vitest";
import type { SlackEmulator } from "../../src/emulator/index.js";

export interface BoltInstallOptions {
  teamId: string;
  /** The installing member; default the workspace's first. */
  userId?: string;
  /** Org-wide: the workspace's org is the installation. */
  enterpriseInstall?: boolean;
  scopes?: string[];
  userScopes?: string[];
  /** The SDK dates expiries by Date.now(): this instant (the emulator's clock) while it runs. */
  nowMs: number;
}

/** Installs the emulator's demo app through @slack/oauth; the Installation it hands its store, as JSON. */
export async function boltInstall(
  emu: SlackEmulator,
  o: BoltInstallOptions,
): Promise<Record<string, unknown>> {
  let stored: Installation | undefined;
  const installer = new InstallProvider({
    clientId: emu.demoApp.clientId,
    clientSecret: emu.demoApp.clientSecret,
    // No state: the test plays the browser and Slack both (the SDK warns of that, hence the log level).
    stateVerification: false,
    logLevel: LogLevel.ERROR,
    authorizationUrl: `${emu.url}/oauth/v2/authorize`,
    clientOptions: { slackApiUrl: `${emu.url}/api/` },
    installationStore: {
      storeInstallation: async (i) => {
        stored = i as Installation;
      },
      fetchInstallation: async () => {
        throw new Error("not used");
      },
    },
  });
  emu.control.setAuthorize({
    mode: "approve",
    teamId: o.teamId,
    userId: o.userId ?? null,
    enterpriseInstall: o.enterpriseInstall === true,
  });
  try {
    const url = await installer.generateInstallUrl(
      { scopes: o.scopes ?? ["chat:write"], userScopes: o.userScopes ?? ["users:read"] },
      false,
    );
    const redirect = await fetch(url, { redirect: "manual" });
    const callback = new URL(redirect.headers.get("location") ?? "");
    vi.useFakeTimers({ toFake: ["Date"], now: o.nowMs });
    const failures = await handleCallback(installer, callback);
    if (failures.length > 0) throw failures[0];
  } finally {
    vi.useRealTimers();
    emu.control.setAuthorize({ teamId: null, userId: null, enterpriseInstall: false });
  }
  if (stored === undefined) throw new Error("@slack/oauth stored no installation");
  return JSON.parse(JSON.stringify(stored)) as Record<string, unknown>;
}

/** Plays Slack's redirect to `callback` through the SDK's handleCallback; the failures it reported. */
export async function handleCallback(installer: InstallProvider, callback: URL): Promise<unknown[]> {
  const failures: unknown[] = [];
  await new Promise<void>((resolve) => {
    const req = { url: `${callback.pathname}${callback.search}`, headers: {} };
    const res = { setHeader() {}, writeHead() {}, end() {} };
    void installer.handleCallback(req as never, res as never, {
      success: () => resolve(),
      failure: (error) => {
        failures.push(error);
        resolve();
      },
    });
  });
  return failures;
}
