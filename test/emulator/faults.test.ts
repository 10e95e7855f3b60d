// Rate limits (slack-api.md §5), injected faults (§9 knobs), latency and exact counters.
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { api, emulator, refresh, str } from "./emulator-harness.js";

/** A raw request that reports a dropped connection instead of throwing. */
function rawPost(url: string, body: string): Promise<{ status: number } | { dropped: string }> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" } },
      (res) => {
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
      },
    );
    req.on("error", (e: NodeJS.ErrnoException) => resolve({ dropped: e.code ?? e.message }));
    req.end(body);
  });
}

describe("rate limits", () => {
  it("answers 429 with Retry-After and the ratelimited body once over the per-minute limit", async () => {
    const emu = await emulator({ now: () => 1_700_000_000_000 }); // a frozen base: Retry-After is exact
    const bot = str(emu.control.install({ clientId: emu.demoApp.clientId }), "access_token");
    emu.control.setRateLimit("auth.test", 2);
    expect((await api(emu, "auth.test", {}, { bearer: bot })).status).toBe(200);
    expect((await api(emu, "auth.test", {}, { bearer: bot })).status).toBe(200);
    emu.control.advance(20);
    const limited = await api(emu, "auth.test", {}, { bearer: bot });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("40");
    expect(limited.body).toEqual({ ok: false, error: "ratelimited" });
    // Other methods are not limited; the window resets after a minute.
    expect((await api(emu, "conversations.list", {}, { bearer: bot })).status).toBe(200);
    emu.control.advance(40);
    expect((await api(emu, "auth.test", {}, { bearer: bot })).status).toBe(200);
    emu.control.setRateLimit("auth.test", null);
    for (let i = 0; i < 5; i++) expect((await api(emu, "auth.test", {}, { bearer: bot })).status).toBe(200);
  });

  it("rate-limits before anything else, even an unauthenticated call", async () => {
    const emu = await emulator();
    emu.control.setRateLimit("auth.test", 0);
    expect((await api(emu, "auth.test")).status).toBe(429);
  });
});

describe("faults", () => {
  it("http_500 answers an HTML 500, `times` times, then the method works again", async () => {
    const emu = await emulator();
    const bot = str(emu.control.install({ clientId: emu.demoApp.clientId }), "access_token");
    emu.control.fault("auth.test", { kind: "http_500", times: 2 });
    for (let i = 0; i < 2; i++) {
      const res = await api(emu, "auth.test", {}, { bearer: bot });
      expect(res.status).toBe(500);
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(String(res.body["html"])).toContain("Server Error");
    }
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body["ok"]).toBe(true);
  });

  it("internal_error answers 200 with ok:false; ratelimited answers 429 with its Retry-After", async () => {
    const emu = await emulator();
    emu.control.fault("auth.test", { kind: "internal_error", times: 1 });
    emu.control.fault("auth.test", { kind: "ratelimited", times: 1, retryAfterSeconds: 7 });
    expect(await api(emu, "auth.test")).toMatchObject({
      status: 200,
      body: { ok: false, error: "internal_error" },
    });
    const limited = await api(emu, "auth.test");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
    expect((await api(emu, "auth.test")).body).toEqual({ ok: false, error: "not_authed" });
  });

  it("hang holds the request for hangMs, then answers normally", async () => {
    const emu = await emulator();
    emu.control.fault("auth.test", { kind: "hang", times: 1, hangMs: 30 });
    const started = performance.now();
    expect((await api(emu, "auth.test")).body).toEqual({ ok: false, error: "not_authed" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it("hang without hangMs holds until the client gives up", async () => {
    const emu = await emulator();
    emu.control.fault("auth.test", { kind: "hang", times: 1 });
    await expect(
      fetch(`${emu.url}/api/auth.test`, { method: "POST", signal: AbortSignal.timeout(50) }),
    ).rejects.toThrow();
  });

  it("lost_response on a refresh commits the rotation, then drops the connection unanswered", async () => {
    const emu = await emulator();
    const install = emu.control.install({ clientId: emu.demoApp.clientId });
    const rt = str(install, "refresh_token");
    emu.control.fault("oauth.v2.access", { kind: "lost_response", times: 1 });
    const body = new URLSearchParams({
      client_id: emu.demoApp.clientId,
      client_secret: emu.demoApp.clientSecret,
      grant_type: "refresh_token",
      refresh_token: rt,
    }).toString();
    const lost = await rawPost(`${emu.url}/api/oauth.v2.access`, body);
    expect(lost).toHaveProperty("dropped");
    // The rotation happened: the old token is in its grace window, and a retry inside it recovers.
    expect(emu.control.tokenInfo(rt).state).toBe("in_grace");
    expect(emu.control.counters()).toMatchObject({ refreshes: 1, refreshTokenPresentations: { [rt]: 1 } });
    expect((await refresh(emu, rt)).body["ok"]).toBe(true);
    expect(emu.control.counters().refreshTokenPresentations[rt]).toBe(2);
  });

  it("fatal_error on a refresh commits the rotation, then answers HTTP 200 ok:false fatal_error (§4.5)", async () => {
    const emu = await emulator();
    const install = emu.control.install({ clientId: emu.demoApp.clientId });
    const rt = str(install, "refresh_token");
    emu.control.fault("oauth.v2.access", { kind: "fatal_error", times: 1 });
    const failed = await refresh(emu, rt);
    expect({ status: failed.status, body: failed.body }).toEqual({
      status: 200,
      body: { ok: false, error: "fatal_error" },
    });
    // "some aspect of the operation succeeded": the refresh token was spent and is in its grace window.
    expect(emu.control.tokenInfo(rt).state).toBe("in_grace");
    expect(emu.control.counters()).toMatchObject({ refreshes: 1 });
    expect((await refresh(emu, rt)).body["ok"]).toBe(true);
  });

  it("error answers any code as HTTP 200 ok:false before the call runs; a malformed code is refused", async () => {
    const emu = await emulator();
    const install = emu.control.install({ clientId: emu.demoApp.clientId });
    const rt = str(install, "refresh_token");
    emu.control.fault("oauth.v2.access", { kind: "error", error: "team_access_not_granted", times: 1 });
    const failed = await refresh(emu, rt);
    expect({ status: failed.status, body: failed.body }).toEqual({
      status: 200,
      body: { ok: false, error: "team_access_not_granted" },
    });
    // Not run: the refresh token was not spent.
    expect(emu.control.tokenInfo(rt).state).toBe("active");
    expect(emu.control.counters()).toMatchObject({ refreshes: 0 });
    expect((await refresh(emu, rt)).body["ok"]).toBe(true);
    expect(() => emu.control.fault("auth.test", { kind: "error", times: 1 })).toThrow(/error fault/);
    expect(() => emu.control.fault("auth.test", { kind: "error", error: "<b>", times: 1 })).toThrow(
      /error fault/,
    );
  });

  it("a fault on `*` hits any method; clearFaults removes queued faults", async () => {
    const emu = await emulator();
    emu.control.fault("*", { kind: "internal_error", times: 1 });
    expect((await api(emu, "users.info")).body).toEqual({ ok: false, error: "internal_error" });
    emu.control.fault("auth.test", { kind: "internal_error", times: 3 });
    emu.control.clearFaults();
    expect((await api(emu, "auth.test")).body).toEqual({ ok: false, error: "not_authed" });
    expect(() => emu.control.fault("auth.test", { kind: "nope" as "hang", times: 1 })).toThrow(
      /unknown fault kind/,
    );
  });

  it("adds latency to all methods or to one", async () => {
    const emu = await emulator({ latencyMs: 0 });
    emu.control.setLatency(40, "auth.test");
    const started = performance.now();
    await api(emu, "auth.test");
    expect(performance.now() - started).toBeGreaterThanOrEqual(35);
    // A per-method latency leaves other methods alone: users.info would take 10 s if it did not.
    emu.control.setLatency(10_000, "conversations.list");
    const quick = await fetch(`${emu.url}/api/users.info`, {
      method: "POST",
      signal: AbortSignal.timeout(5000),
    });
    expect(await quick.json()).toEqual({ ok: false, error: "not_authed" });
    emu.control.setLatency(30);
    const all = performance.now();
    await api(emu, "users.info");
    expect(performance.now() - all).toBeGreaterThanOrEqual(25);
  });
});

describe("counters", () => {
  it("counts calls on arrival and refreshes exactly; resetCounters starts over", async () => {
    const emu = await emulator();
    const install = emu.control.install({
      clientId: emu.demoApp.clientId,
      userScopes: ["search:read"],
      botScopes: ["chat:write"],
    });
    const botRt = str(install, "refresh_token");
    const userRt = str(install["authed_user"] as Record<string, unknown>, "refresh_token");
    emu.control.fault("auth.test", { kind: "http_500", times: 1 });
    await api(emu, "auth.test");
    await api(emu, "auth.test");
    const r1 = await refresh(emu, botRt);
    await refresh(emu, str(r1.body, "refresh_token"));
    await refresh(emu, userRt);
    await refresh(emu, "xoxe-1-unknown");
    const inst = `${emu.demoApp.appId}:${emu.demoTeam.teamId}`;
    expect(emu.control.counters()).toEqual({
      calls: { "auth.test": 2, "oauth.v2.access": 4 },
      refreshTokenPresentations: {
        [botRt]: 1,
        [str(r1.body, "refresh_token")]: 1,
        [userRt]: 1,
        "xoxe-1-unknown": 1,
      },
      maxPresentations: 1,
      refreshesPerCredential: { [`${inst}:bot`]: 2, [`${inst}:user:${emu.demoTeam.userId}`]: 1 },
      invalidRefreshTokenAnswers: 1,
      refreshes: 3,
    });
    emu.control.resetCounters();
    expect(emu.control.counters()).toEqual({
      calls: {},
      refreshTokenPresentations: {},
      maxPresentations: 0,
      refreshesPerCredential: {},
      invalidRefreshTokenAnswers: 0,
      refreshes: 0,
    });
  });
});

describe("clock", () => {
  it("reads an injected now() and adds advance() on top", async () => {
    let fake = 1_700_000_000_000;
    const emu = await emulator({ now: () => fake, accessTtlSeconds: 100 });
    const bot = str(emu.control.install({ clientId: emu.demoApp.clientId }), "access_token");
    expect(emu.control.tokenInfo(bot).expiresAtMs).toBe(fake + 100_000);
    fake += 60_000;
    expect(emu.control.now()).toBe(fake);
    emu.control.advance(40);
    expect(emu.control.now()).toBe(fake + 40_000);
    expect((await api(emu, "auth.test", {}, { bearer: bot })).body).toEqual({
      ok: false,
      error: "token_expired",
    });
    expect(() => emu.control.advance(-1)).toThrow(RangeError);
  });
});
