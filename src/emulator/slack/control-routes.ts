// The control API over HTTP: `POST /_emulator/<name>` with a JSON body of named arguments, so a test or
// benchmark in another OS process can drive the emulator. Read-only names also answer GET.
// Answers: the in-process result as JSON (`{"ok":true}` for none); a bad call is 400 `{"ok":false,"error"}`.
import type { ServerResponse } from "node:http";
import type { SlackEmulatorControl } from "./control.js";
import type { FaultKind } from "./faults.js";
import { sendJson } from "./http-io.js";
import type { CreateAppOptions, InstallOptions } from "./state.js";

type Args = Record<string, unknown>;

class BadControlCall extends Error {}

function str(a: Args, name: string): string {
  const v = a[name];
  if (typeof v !== "string" || v === "") throw new BadControlCall(`"${name}" must be a non-empty string`);
  return v;
}

function optStr(a: Args, name: string): string | undefined {
  return a[name] === undefined || a[name] === null ? undefined : str(a, name);
}

function num(a: Args, name: string): number {
  const v = a[name];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new BadControlCall(`"${name}" must be a number`);
  return v;
}

function optNum(a: Args, name: string): number | undefined {
  return a[name] === undefined ? undefined : num(a, name);
}

function bool(a: Args, name: string): boolean {
  if (typeof a[name] !== "boolean") throw new BadControlCall(`"${name}" must be a boolean`);
  return a[name] as boolean;
}

function strArray(a: Args, name: string): string[] | undefined {
  const v = a[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string"))
    throw new BadControlCall(`"${name}" must be a string array`);
  return v as string[];
}

/** `T` with its possibly-undefined properties made optional instead (`exactOptionalPropertyTypes`). */
type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/** Drops undefined values, since `exactOptionalPropertyTypes` forbids passing them on. */
function defined<T extends object>(o: T): Defined<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Defined<T>;
}

function installArgs(a: Args): InstallOptions {
  const enterpriseInstall = a["enterpriseInstall"] === undefined ? undefined : bool(a, "enterpriseInstall");
  return defined({
    clientId: str(a, "clientId"),
    teamId: optStr(a, "teamId"),
    enterpriseInstall,
    userId: optStr(a, "userId"),
    botScopes: strArray(a, "botScopes"),
    userScopes: strArray(a, "userScopes"),
  }) as InstallOptions;
}

type Route = { readOnly: boolean; run: (c: SlackEmulatorControl, a: Args) => unknown };

export const CONTROL_ROUTES: Record<string, Route> = {
  createApp: {
    readOnly: false,
    run: (c, a) =>
      c.createApp(
        defined({
          name: optStr(a, "name"),
          tokenRotation: a["tokenRotation"] === undefined ? undefined : bool(a, "tokenRotation"),
          pkce: a["pkce"] === undefined ? undefined : bool(a, "pkce"),
          redirectUrls: strArray(a, "redirectUrls"),
          eventsUrl: optStr(a, "eventsUrl"),
          botScopes: strArray(a, "botScopes"),
          userScopes: strArray(a, "userScopes"),
        }) as CreateAppOptions,
      ),
  },
  setTokenRotation: {
    readOnly: false,
    run: (c, a) => c.setTokenRotation(str(a, "clientId"), bool(a, "enabled")),
  },
  setEventsUrl: {
    readOnly: false,
    run: (c, a) => c.setEventsUrl(str(a, "clientId"), optStr(a, "url") ?? null),
  },
  createTeam: {
    readOnly: false,
    run: (c, a) =>
      c.createTeam(
        defined({
          name: optStr(a, "name"),
          enterpriseId: optStr(a, "enterpriseId"),
          enterpriseName: optStr(a, "enterpriseName"),
        }),
      ),
  },
  createUser: {
    readOnly: false,
    run: (c, a) => c.createUser(str(a, "teamId"), defined({ name: optStr(a, "name") })),
  },
  install: { readOnly: false, run: (c, a) => c.install(installArgs(a)) },
  reinstall: { readOnly: false, run: (c, a) => c.reinstall(installArgs(a)) },
  uninstall: {
    readOnly: false,
    run: (c, a) => c.uninstall({ clientId: str(a, "clientId"), teamId: str(a, "teamId") }),
  },
  advance: { readOnly: false, run: (c, a) => ({ nowMs: c.advance(num(a, "seconds")) }) },
  now: { readOnly: true, run: (c) => ({ nowMs: c.now() }) },
  revokeToken: { readOnly: false, run: (c, a) => c.revokeToken(str(a, "token")) },
  leakToken: { readOnly: false, run: (c, a) => c.leakToken(str(a, "token")) },
  deactivateUser: { readOnly: false, run: (c, a) => c.deactivateUser(str(a, "teamId"), str(a, "userId")) },
  setRateLimit: {
    readOnly: false,
    run: (c, a) => c.setRateLimit(str(a, "method"), a["perMinute"] === null ? null : num(a, "perMinute")),
  },
  fault: {
    readOnly: false,
    run: (c, a) =>
      c.fault(
        str(a, "method"),
        defined({
          kind: str(a, "kind") as FaultKind,
          times: optNum(a, "times") ?? 1,
          hangMs: optNum(a, "hangMs"),
          retryAfterSeconds: optNum(a, "retryAfterSeconds"),
          error: optStr(a, "error"),
        }),
      ),
  },
  clearFaults: { readOnly: false, run: (c) => c.clearFaults() },
  setLatency: { readOnly: false, run: (c, a) => c.setLatency(num(a, "ms"), optStr(a, "method")) },
  setAuthorize: {
    readOnly: false,
    run: (c, a) => {
      const settings: Args = {};
      if (a["mode"] !== undefined) settings["mode"] = str(a, "mode");
      if (a["teamId"] !== undefined) settings["teamId"] = a["teamId"] === null ? null : str(a, "teamId");
      if (a["userId"] !== undefined) settings["userId"] = a["userId"] === null ? null : str(a, "userId");
      if (a["enterpriseInstall"] !== undefined) settings["enterpriseInstall"] = bool(a, "enterpriseInstall");
      return c.setAuthorize(settings);
    },
  },
  verifyEventsUrl: {
    readOnly: false,
    run: (c, a) => c.verifyEventsUrl(str(a, "clientId"), optStr(a, "url")),
  },
  deliveries: { readOnly: true, run: (c) => c.deliveries() },
  flushEvents: { readOnly: false, run: (c) => c.flushEvents() },
  counters: { readOnly: true, run: (c) => c.counters() },
  counterTotals: { readOnly: true, run: (c) => c.counterTotals() },
  resetCounters: { readOnly: false, run: (c) => c.resetCounters() },
  tokenInfo: { readOnly: true, run: (c, a) => c.tokenInfo(str(a, "token")) },
};

export async function handleControl(
  control: SlackEmulatorControl,
  extra: Record<string, () => unknown>,
  name: string,
  httpMethod: string,
  query: URLSearchParams,
  body: Buffer,
  res: ServerResponse,
): Promise<void> {
  const extraRoute = extra[name];
  if (extraRoute !== undefined) return sendJson(res, extraRoute());
  const route = Object.hasOwn(CONTROL_ROUTES, name) ? CONTROL_ROUTES[name] : undefined;
  if (route === undefined) return sendJson(res, { ok: false, error: `unknown control call ${name}` }, 404);
  if (httpMethod !== "POST" && !(httpMethod === "GET" && route.readOnly)) {
    return sendJson(res, { ok: false, error: `use POST for ${name}` }, 405);
  }
  let args: Args = Object.fromEntries(query);
  if (body.length > 0) {
    try {
      const parsed: unknown = JSON.parse(body.toString("utf8"));
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("not an object");
      args = { ...args, ...(parsed as Args) };
    } catch {
      return sendJson(res, { ok: false, error: "the body must be a JSON object" }, 400);
    }
  }
  try {
    const result = await route.run(control, args);
    sendJson(res, result === undefined ? { ok: true } : result);
  } catch (error) {
    sendJson(res, { ok: false, error: error instanceof Error ? error.message : String(error) }, 400);
  }
}
