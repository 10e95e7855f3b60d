// Shared by the emulator tests: start one on 127.0.0.1:0 and call it over real HTTP.
import { afterEach } from "vitest";
import type { SlackEmulator, SlackEmulatorOptions } from "../../src/emulator/index.js";
import { startSlackEmulator } from "../../src/emulator/index.js";

const running: SlackEmulator[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

export async function emulator(options: SlackEmulatorOptions = {}): Promise<SlackEmulator> {
  const emu = await startSlackEmulator(options);
  running.push(emu);
  return emu;
}

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POSTs a form-encoded Web API call; `bearer` goes in the Authorization header. */
export async function api(
  emu: SlackEmulator,
  method: string,
  params: Record<string, string> = {},
  init: { bearer?: string; headers?: Record<string, string> } = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {
    "content-type": "application/x-www-form-urlencoded",
    ...init.headers,
  };
  if (init.bearer !== undefined) headers["authorization"] = `Bearer ${init.bearer}`;
  const res = await fetch(`${emu.url}/api/${method}`, {
    method: "POST",
    headers,
    body: new URLSearchParams(params),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text.startsWith("{") ? JSON.parse(text) : { html: text },
  };
}

/** The refresh grant with client credentials in the body (as the node SDK sends them). */
export function refresh(emu: SlackEmulator, refreshToken: string, app = emu.demoApp): Promise<ApiAnswer> {
  return api(emu, "oauth.v2.access", {
    client_id: app.clientId,
    client_secret: app.clientSecret,
    grant_type: "refresh_token",
    refresh_token: refreshToken,
  });
}

export function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== "string") throw new Error(`${key} is not a string in ${JSON.stringify(body)}`);
  return v;
}

/** Runs the authorize step with auto-approve and returns the code from the redirect. */
export async function authorizeCode(emu: SlackEmulator, query: Record<string, string>): Promise<URL> {
  const res = await fetch(
    `${emu.url}/oauth/v2/authorize?${new URLSearchParams({ emulator_decision: "approve", ...query })}`,
    {
      redirect: "manual",
    },
  );
  if (res.status !== 302) throw new Error(`authorize answered ${res.status}: ${await res.text()}`);
  return new URL(res.headers.get("location") ?? "");
}
