// A reconnect link must work for a connection whose id is not its Slack workspace (imported without
// an id, or with one of the operator's own): a health check learns the workspace from auth.test.

import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TokenwardenError } from "../../src/core/errors.js";
import type { Connection } from "../../src/core/types.js";
import type { ImportInput } from "../../src/engine/import-input.js";
import type { Warden } from "../../src/engine/warden.js";
import { STORE_KINDS } from "../helpers/store-under-test.js";
import {
  botFromInstall,
  hop,
  installViaBrowser,
  openServerHarness,
  type ServerHarness,
} from "./server-harness.js";

type Json = Record<string, unknown>;

describe.each(STORE_KINDS)("reconnect through the install flow (%s)", (kind) => {
  let h: ServerHarness;
  beforeAll(async () => {
    h = await openServerHarness(kind);
    h.emu.control.setAuthorize({ mode: "approve" });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** A workspace with the app installed, imported over the API with `fields` (id, metadata) added. */
  async function importInstalled(name: string, fields: (teamId: string) => Json = () => ({})) {
    const { clientId } = h.emu.demoApp;
    const team = h.emu.control.createTeam({ name });
    const install = h.emu.control.install({ clientId, teamId: team.teamId });
    const res = await h.api("/v1/connections", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        provider: "slack",
        credentials: {
          bot: {
            access_token: install.access_token,
            refresh_token: install.refresh_token,
            expires_in: 43_200,
          },
        },
        ...fields(team.teamId),
      }),
    });
    expect(res.status).toBe(201);
    return { id: String(((await res.json()) as Json)["id"]), teamId: team.teamId };
  }

  /** A workspace with the app installed, imported over the API as `id`, its metadata naming the workspace. */
  function importKnown(name: string, id: string) {
    return importInstalled(name, (teamId) => ({ id, metadata: { team_id: teamId } }));
  }

  /** Imported without an id: its id is `conn_…`, and nothing says which workspace it is. */
  async function importWithoutId(name: string): Promise<{ id: string; teamId: string }> {
    const imported = await importInstalled(name);
    expect(imported.id).not.toBe(imported.teamId);
    return imported;
  }

  async function kill(id: string, teamId: string): Promise<void> {
    h.emu.control.uninstall({ clientId: h.emu.demoApp.clientId, teamId });
    const checked = await h.api(`/v1/connections/${id}/check`, { method: "POST" });
    expect(((await checked.json()) as Json)["status"]).toBe("needs_reauth");
  }

  async function connectLink(id: string): Promise<string> {
    const session = await h.api("/v1/connect-sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ connection_id: id }),
    });
    expect(session.status).toBe(201);
    return String(((await session.json()) as Json)["url"]);
  }

  /**
   * Deletes `id` while a person who followed its `link` is on Slack's page: the link followed again,
   * and the person's return from Slack, both say the connection no longer exists.
   */
  async function deleteWhileOnSlack(id: string, link: string): Promise<void> {
    const start = await hop(link);
    await h.api(`/v1/connections/${id}`, { method: "DELETE" });
    const early = await hop(link);
    expect(early.status).toBe(404);
    expect(await early.text()).toContain("no longer exists");
    const consent = await hop(start.headers.get("location") ?? "");
    const late = await hop(consent.headers.get("location") ?? "");
    expect(late.status).toBe(404);
    expect(await late.text()).toContain("no longer exists");
  }

  it("a check records the workspace, so the reconnect link lands on this connection", async () => {
    const { id, teamId } = await importWithoutId("learned");
    const ok = await h.api(`/v1/connections/${id}/check`, { method: "POST" });
    expect(ok.status).toBe(200);
    const shown = (await (await h.api(`/v1/connections/${id}`)).json()) as Json;
    expect(shown["metadata"]).toMatchObject({ team_id: teamId });

    await kill(id, teamId);
    const back = await installViaBrowser(h, await connectLink(id));
    expect(back.status).toBe(303);
    expect(back.headers.get("location")).toContain(`connection_id=${encodeURIComponent(id)}`);
    const revived = (await (await h.api(`/v1/connections/${id}`)).json()) as Json;
    expect(revived["status"]).toBe("active");
  });

  it("a plain install of a workspace stored under an id of the app's own reconnects that connection", async () => {
    // The workspace reinstalls from the app's "Add to Slack" button, not from a reconnect link.
    const { id, teamId } = await importInstalled("own-id", (t) => ({
      id: "acme-workspace",
      metadata: { team_id: t, customer: "acme" },
    }));
    await kill(id, teamId);
    h.emu.control.setAuthorize({ teamId });
    try {
      const back = await installViaBrowser(h, `${h.server.publicUrl}/oauth/slack/install`);
      expect(back.status).toBe(303);
      expect(back.headers.get("location")).toContain(`connection_id=${id}`);
    } finally {
      h.emu.control.setAuthorize({ teamId: null });
    }
    const revived = (await (await h.api(`/v1/connections/${id}`)).json()) as Json;
    expect(revived).toMatchObject({ status: "active", metadata: { team_id: teamId, customer: "acme" } });
    expect((await h.api(`/v1/connections/${teamId}`)).status).toBe(404); // no second connection
  });

  it("never binds a connection whose workspace is unknown to whatever workspace installs", async () => {
    const { id } = await importWithoutId("unknown");
    const start = await hop(await connectLink(id));
    // No `team=conn_…` hint is sent to Slack.
    expect(new URL(start.headers.get("location") ?? "").searchParams.get("team")).toBeNull();
    const consent = await hop(start.headers.get("location") ?? "");
    const page = await hop(consent.headers.get("location") ?? "");
    expect(page.status).toBe(400);
    const text = await page.text();
    expect(text).toContain("workspace is not known");
    expect(text).toContain("tokenwarden connections check"); // the way out while its token works
    expect(((await (await h.api(`/v1/connections/${id}`)).json()) as Json)["status"]).toBe("active");
  });

  it("tells the person a link's connection was deleted, before sending them to Slack and after", async () => {
    const { id } = await importWithoutId("deleted");
    await deleteWhileOnSlack(id, await connectLink(id));
  });

  // An id of the operator's own may look like a Slack id (`TESTCO`, `EXAMPLE1`): only what Slack said
  // of the connection (its metadata) names its workspace, never the shape of its id.
  it("sends Slack no team hint from an id that only looks like a workspace's", async () => {
    const { id } = await importInstalled("look-alike", () => ({ id: "EXAMPLE1", metadata: { plan: "pro" } }));
    const start = await hop(await connectLink(id));
    expect(start.status).toBe(302);
    expect(new URL(start.headers.get("location") ?? "").searchParams.get("team")).toBeNull();
  });

  it("tells the person a link's connection was deleted, though its id looks like a Slack id", async () => {
    const { id } = await importKnown("look-alike deleted", "TESTCO");
    await deleteWhileOnSlack(id, await connectLink(id));
    expect((await h.api(`/v1/connections/${id}`)).status).toBe(404);
  });

  // Anyone on the internet can type `?connection_id=…`: its answer must not say which ids are
  // stored, nor which workspace each one is (Slack's `team=` in the authorize URL).
  it("answers a bare connection_id alike for a stored connection and for an unknown id", async () => {
    const { id, teamId } = await importKnown("probed", "acme-probed");
    const answers: string[] = [];
    for (const probe of [id, teamId, "no-such-connection", "T0NOSUCH"]) {
      const res = await hop(`${h.server.publicUrl}/oauth/slack/install?connection_id=${probe}`);
      const location = new URL(res.headers.get("location") ?? h.server.publicUrl);
      location.searchParams.delete("state"); // one of a kind every time
      answers.push(`${res.status} ${location} ${await res.text()}`);
    }
    expect(new Set(answers).size, answers.join("\n")).toBe(1);
    expect(answers[0]).toMatch(/^302 /);
    expect(answers[0]).not.toContain(teamId);
  });

  it("refuses a bare connection_id completed in another workspace alike, whatever it names", async () => {
    const victim = await importKnown("victim", "victim-co");
    const unknown = await importWithoutId("victim, workspace unknown");
    // The outsider completes the install in a workspace of their own.
    const own = h.emu.control.createTeam({ name: "outsider" });
    const outsider = h.emu.control.createUser(own.teamId, { name: "outsider" });
    h.emu.control.setAuthorize({ teamId: own.teamId, userId: outsider.userId });
    const pages: string[] = [];
    try {
      for (const probe of [victim.id, unknown.id, "no-such-connection"]) {
        const page = await installViaBrowser(
          h,
          `${h.server.publicUrl}/oauth/slack/install?connection_id=${probe}`,
        );
        pages.push(`${page.status} ${await page.text()}`);
      }
    } finally {
      h.emu.control.setAuthorize({ teamId: null, userId: null });
    }
    expect(new Set(pages).size, pages.join("\n")).toBe(1);
    expect(pages[0]).toMatch(/^400 /);
    for (const { id } of [victim, unknown]) {
      expect(((await (await h.api(`/v1/connections/${id}`)).json()) as Json)["status"]).toBe("active");
    }
    expect((await h.api(`/v1/connections/${own.teamId}`)).status).toBe(404);
  });

  it("signs a dead connection's reconnect_url: it preselects the workspace, and says when the connection is gone", async () => {
    const { id, teamId } = await importKnown("signed", "signed-co");
    const other = await importKnown("signed, other", "other-co");
    const announced: Array<string | null> = [];
    h.server.warden.on("needs_reauth", (e) => {
      if (e.connectionId === id) announced.push(e.reconnectUrl);
    });
    await kill(id, teamId);
    const shown = (await (await h.api(`/v1/connections/${id}`)).json()) as Json;
    const link = String(shown["reconnect_url"]);
    expect(new URL(link).searchParams.get("sig")).toMatch(/^[\w-]{43}$/);
    expect(announced).toEqual([link]); // the library's events carry the same link
    const start = await hop(link);
    expect(new URL(start.headers.get("location") ?? "").searchParams.get("team")).toBe(teamId);
    // A signature is its own connection's: on another id it is a bare id, and preselects nothing.
    const moved = await hop(link.replace(`connection_id=${id}`, `connection_id=${other.id}`));
    expect(moved.status).toBe(302);
    expect(new URL(moved.headers.get("location") ?? "").searchParams.get("team")).toBeNull();
    await h.api(`/v1/connections/${id}`, { method: "DELETE" });
    const gone = await hop(link);
    expect(gone.status).toBe(404);
    expect(await gone.text()).toContain("no longer exists");
  });

  // A connect session is made for one person's one install: once an install through it has
  // completed, the link is spent, so a copy of it (forwarded, in a browser's history) installs nothing.
  it("spends a connect session once an install through it completes; a cancelled one stays usable", async () => {
    const { id, teamId } = await importKnown("single use", "single-use-co");
    await kill(id, teamId);
    const link = await connectLink(id);
    h.emu.control.setAuthorize({ mode: "deny" });
    try {
      const cancelled = await installViaBrowser(h, link);
      expect(cancelled.status).toBe(200);
      expect(await cancelled.text()).toContain("cancelled");
    } finally {
      h.emu.control.setAuthorize({ mode: "approve" });
    }
    // Opened in two tabs: the first to come back installs; the second is refused before its code is
    // exchanged, so Slack issues no tokens for it.
    const tabs = await Promise.all([hop(link), hop(link)]);
    const consents = await Promise.all(tabs.map((t) => hop(t.headers.get("location") ?? "")));
    const first = await hop(consents[0]?.headers.get("location") ?? "");
    expect(first.status).toBe(303);
    expect(((await (await h.api(`/v1/connections/${id}`)).json()) as Json)["status"]).toBe("active");
    const exchanges = h.emu.control.counters().calls["oauth.v2.access"];
    const second = await hop(consents[1]?.headers.get("location") ?? "");
    expect(second.status).toBe(400);
    expect(await second.text()).toContain("already used");
    expect(h.emu.control.counters().calls["oauth.v2.access"]).toBe(exchanges);
    // Opened again later: it says so, and sends nobody to Slack.
    const again = await hop(link);
    expect(again.status).toBe(400);
    expect(again.headers.get("location")).toBeNull();
    expect(await again.text()).toContain("already used");
  });

  // A state lives 10 minutes whatever is left of the session it was started from: a tab opened just
  // before the session expired comes back after it, and must still find the session spent.
  it("keeps a connect session spent for as long as a state started from it can come back", async () => {
    const { id, teamId } = await importKnown("single use, late tab", "single-use-late-tab");
    await kill(id, teamId);
    const session = await h.api("/v1/connect-sessions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ connection_id: id, ttl_seconds: 60 }),
    });
    const link = String(((await session.json()) as Json)["url"]);
    h.clock.advance(50_000);
    // Two tabs, ten seconds before the session expires; both reach Slack's consent.
    const tabs = await Promise.all([hop(link), hop(link)]);
    const consents = await Promise.all(tabs.map((t) => hop(t.headers.get("location") ?? "")));
    h.clock.advance(20_000);
    const first = await hop(consents[0]?.headers.get("location") ?? "");
    expect(first.status).toBe(303);
    const exchanges = h.emu.control.counters().calls["oauth.v2.access"];
    h.clock.advance(5 * 60_000); // the second tab comes back well inside its state's 10 minutes
    const second = await hop(consents[1]?.headers.get("location") ?? "");
    expect(second.status).toBe(400);
    expect(await second.text()).toContain("already used");
    expect(h.emu.control.counters().calls["oauth.v2.access"]).toBe(exchanges);
  });

  it("leaves a connect session usable when its install was refused", async () => {
    const { id } = await importKnown("single use, refused", "single-use-refused");
    const link = await connectLink(id);
    const other = h.emu.control.createTeam({ name: "single use, elsewhere" });
    const admin = h.emu.control.createUser(other.teamId, { name: "admin" });
    h.emu.control.setAuthorize({ teamId: other.teamId, userId: admin.userId });
    try {
      const start = await hop(link);
      const authorize = new URL(start.headers.get("location") ?? "");
      authorize.searchParams.delete("team"); // the person picks another workspace in Slack
      const consent = await hop(authorize.toString());
      const refused = await hop(consent.headers.get("location") ?? "");
      expect(refused.status).toBe(400);
      expect(await refused.text()).toContain("different workspace");
    } finally {
      h.emu.control.setAuthorize({ teamId: null, userId: null });
    }
    const back = await installViaBrowser(h, link);
    expect(back.status).toBe(303);
  });

  // Mail clients, link trackers and chat tools append parameters of their own to the links they show.
  it("an install link with a tracking parameter appended still redirects to Slack", async () => {
    const { id, teamId } = await importInstalled("tracked", (teamId) => ({ metadata: { team_id: teamId } }));
    const session = await connectLink(id);
    await kill(id, teamId);
    const dead = (await (await h.api(`/v1/connections/${id}`)).json()) as Json;
    for (const link of [
      `${dead["reconnect_url"]}&utm_source=email&utm_medium=alert`,
      `${session}&fbclid=IwAR0abc`,
    ]) {
      const res = await hop(link);
      expect(res.status, link).toBe(302);
      expect(res.headers.get("location")).toContain(`/oauth/v2/authorize?`);
      expect(new URL(res.headers.get("location") ?? "").searchParams.get("team")).toBe(teamId);
    }
  });

  // The callback stores a reconnect with connections.import(), which replaces metadata: what the
  // operator attached (a customer id, a tenant key) must survive the end user's reconnect.
  it("a reconnect leaves the operator's metadata in place, the install's fields on top", async () => {
    const { id, teamId } = await importInstalled("Acme", (teamId) => ({
      id: "acme-prod",
      metadata: { team_id: teamId, team_name: "stale name", customer_id: "cus_42", plan: "enterprise" },
    }));
    await kill(id, teamId);
    const dead = (await (await h.api(`/v1/connections/${id}`)).json()) as Json;
    h.emu.control.setAuthorize({ mode: "approve", teamId });
    const back = await installViaBrowser(h, String(dead["reconnect_url"]));
    expect(back.status).toBe(303);
    const after = (await (await h.api(`/v1/connections/${id}`)).json()) as Json;
    expect(after["status"]).toBe("active");
    expect(after["metadata"]).toMatchObject({
      team_id: teamId,
      team_name: "Acme",
      customer_id: "cus_42",
      plan: "enterprise",
    });
  });
});

describe("the install link while the store fails", () => {
  let h: ServerHarness;
  const revoked: string[] = [];
  const recording: typeof fetch = async (input, init) => {
    if (String(input).endsWith("/api/auth.revoke")) {
      revoked.push(new Headers(init?.headers).get("authorization")?.slice("Bearer ".length) ?? "");
    }
    return fetch(input, init);
  };
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { server: { fetch: recording } });
  });
  afterAll(async () => {
    await h?.close();
  });

  function breakTheStore(): void {
    // Another process (an operator's mistake, a botched migration) takes the table away.
    const db = new Database(h.database.slice("sqlite:".length));
    db.exec("ALTER TABLE connections RENAME TO connections_gone");
    db.close();
  }

  it("revokes what Slack issued when the store fails after the exchange, and says so on a page", async () => {
    const team = h.emu.control.createTeam({ name: "late failure" });
    h.emu.control.createUser(team.teamId, { name: "admin" });
    h.emu.control.setAuthorize({ mode: "approve", teamId: team.teamId });
    const start = await hop(`${h.server.publicUrl}/oauth/slack/install`);
    const consent = await hop(start.headers.get("location") ?? "");
    breakTheStore();
    const page = await hop(consent.headers.get("location") ?? "");
    expect(page.status).toBe(503);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).not.toMatch(/SQLite|no such table|connections/);
    expect(revoked).toHaveLength(2);
    for (const token of revoked) expect(h.emu.control.tokenInfo(token).state).not.toBe("active");
  });

  it("answers the install link with a page that names no table, host or SQL (the store still broken)", async () => {
    // A signed link's connection is looked up (a bare id's is not, so it reaches Slack regardless).
    const res = await hop(h.server.reconnectUrl("T0BROKEN"));
    expect(res.status).toBe(503);
    expect(res.headers.get("content-type")).toContain("text/html");
    const text = await res.text();
    expect(text).not.toMatch(/SQLite|no such table|connections/);
  });
});

// A reconnect completed in the wrong workspace is refused after the code exchange, when Slack has
// already installed the app there and issued tokens: those must not stay live with nobody holding them.
describe("refused reconnect into another workspace", () => {
  let h: ServerHarness;
  /** What each code exchange returned, and the token each auth.revoke named, in order. */
  const exchanged: Json[] = [];
  const revokedTokens: string[] = [];
  const recording: typeof fetch = async (input, init) => {
    const url = String(input);
    if (url.endsWith("/api/auth.revoke")) {
      revokedTokens.push(new Headers(init?.headers).get("authorization")?.slice("Bearer ".length) ?? "");
    }
    const res = await fetch(input, init);
    if (url.endsWith("/api/oauth.v2.access") && String(init?.body ?? "").includes("authorization_code")) {
      exchanged.push((await res.clone().json()) as Json);
    }
    return res;
  };
  beforeAll(async () => {
    h = await openServerHarness("sqlite", { server: { fetch: recording } });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Connection `mine` of app `clientId`, reconnected by a person who picks workspace `other` in Slack. */
  async function reconnectIntoOther(server: { publicUrl: string }, clientId: string): Promise<Json> {
    const mine = h.emu.control.createTeam({ name: "mine" });
    const other = h.emu.control.createTeam({ name: "other" });
    const install = h.emu.control.install({ clientId, teamId: mine.teamId });
    await h.server.warden.connections.import({
      id: mine.teamId,
      provider: "slack",
      credentials: { bot: botFromInstall(install) },
      metadata: { team_id: mine.teamId },
    });
    const admin = h.emu.control.createUser(other.teamId, { name: "admin" });
    h.emu.control.setAuthorize({ mode: "approve", teamId: other.teamId, userId: admin.userId });
    const start = await hop(`${server.publicUrl}/oauth/slack/install?connection_id=${mine.teamId}`);
    // The `team` hint only preselects: the person can pick another workspace in Slack.
    const authorize = new URL(start.headers.get("location") ?? "");
    authorize.searchParams.delete("team");
    const consent = await hop(authorize.toString());
    const page = await hop(consent.headers.get("location") ?? "");
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("different workspace");
    expect(exchanged).toHaveLength(1);
    return exchanged.pop() as Json;
  }

  it("revokes the refused installation's tokens, refresh token first", async () => {
    const orphan = await reconnectIntoOther(h.server, h.emu.demoApp.clientId);
    const refresh = String(orphan["refresh_token"]);
    const access = String(orphan["access_token"]);
    expect(h.emu.control.tokenInfo(refresh).state).not.toBe("active");
    expect(h.emu.control.tokenInfo(access).state).not.toBe("active");
    expect(revokedTokens).toEqual([refresh, access]);
  });

  it("a deleted connection stored under its workspace's id is not re-created by its old link", async () => {
    // The operator deleted it; the workspace's admin then follows the link a webhook carried.
    const team = h.emu.control.createTeam({ name: "deleted, then followed" });
    const admin = h.emu.control.createUser(team.teamId, { name: "admin" });
    const install = h.emu.control.install({ clientId: h.emu.demoApp.clientId, teamId: team.teamId });
    await h.server.warden.connections.import({
      id: team.teamId,
      provider: "slack",
      credentials: { bot: botFromInstall(install) },
    });
    h.emu.control.setAuthorize({ mode: "approve", teamId: team.teamId, userId: admin.userId });
    const start = await hop(h.server.reconnectUrl(team.teamId));
    await h.server.warden.connections.delete(team.teamId);
    revokedTokens.length = 0;
    const consent = await hop(start.headers.get("location") ?? "");
    const page = await hop(consent.headers.get("location") ?? "");
    expect(page.status).toBe(404);
    expect(await page.text()).toContain("no longer exists");
    const orphan = exchanged.pop() as Json;
    expect(revokedTokens).toEqual([String(orphan["refresh_token"]), String(orphan["access_token"])]);
    await expect(h.server.warden.connections.get(team.teamId)).rejects.toMatchObject({ code: "not_found" });
  });

  /**
   * A fresh install through the browser into a new workspace, with the warden's import replaced once
   * by `failing` (which may call the real one); returns the callback page and the team.
   */
  async function installWhileImporting(
    name: string,
    failing: (real: Warden["connections"]["import"], input: ImportInput) => Promise<Connection>,
  ): Promise<{ page: Response; teamId: string }> {
    const team = h.emu.control.createTeam({ name });
    const admin = h.emu.control.createUser(team.teamId, { name: "admin" });
    h.emu.control.setAuthorize({ mode: "approve", teamId: team.teamId, userId: admin.userId });
    revokedTokens.length = 0;
    const connections = h.server.warden.connections;
    const real = connections.import;
    connections.import = async (input) => {
      connections.import = real;
      return failing(real, input);
    };
    try {
      const start = await hop(`${h.server.publicUrl}/oauth/slack/install`);
      const consent = await hop(start.headers.get("location") ?? "");
      return { page: await hop(consent.headers.get("location") ?? ""), teamId: team.teamId };
    } finally {
      connections.import = real;
    }
  }

  it("revokes the tokens of an installation the store failed to keep", async () => {
    const { page } = await installWhileImporting("store down", async () => {
      throw new TokenwardenError("store_unavailable", "the store is down");
    });
    expect(page.status).toBeGreaterThanOrEqual(500);
    const orphan = exchanged.pop() as Json;
    const refresh = String(orphan["refresh_token"]);
    const access = String(orphan["access_token"]);
    expect(revokedTokens).toEqual([refresh, access]);
    expect(h.emu.control.tokenInfo(refresh).state).not.toBe("active");
  });

  // The person in the browser is nobody we know: a store's own message (its host, its SQL) is not theirs.
  it("tells the browser on a page, without the store's message, that the installation was not saved", async () => {
    const { page } = await installWhileImporting("store down, told", async () => {
      throw new TokenwardenError(
        "store_unavailable",
        "PostgreSQL putConnection failed: ECONNREFUSED connect ECONNREFUSED 10.20.30.40:5432",
      );
    });
    exchanged.pop();
    expect(page.status).toBe(503);
    expect(page.headers.get("content-type")).toContain("text/html");
    const text = await page.text();
    expect(text).toContain("not saved");
    expect(text).not.toContain("10.20.30.40");
    expect(text).not.toContain("ECONNREFUSED");
  });

  it("does not revoke the tokens of an installation the store kept, though the import then failed", async () => {
    // The import commits; what fails is its read-back of the saved connection (a store error).
    const { teamId } = await installWhileImporting("committed", async (real, input) => {
      await real(input);
      throw new TokenwardenError("store_unavailable", "the store did not answer the read-back");
    });
    const installed = exchanged.pop() as Json;
    expect((await h.server.warden.connections.get(teamId)).status).toBe("active");
    expect(revokedTokens).toEqual([]);
    expect(h.emu.control.tokenInfo(String(installed["refresh_token"])).state).toBe("active");
    expect(h.emu.control.tokenInfo(String(installed["access_token"])).state).toBe("active");
  });

  // The authorize URL passes through the browser: whoever follows a reconnect link can drop `scope`
  // and keep (or add) a `user_scope`, which a member may often grant without the right to install the bot.
  it("refuses an installation without the bot the app asks for, and keeps the connection's bot", async () => {
    const team = h.emu.control.createTeam({ name: "edited" });
    const install = h.emu.control.install({ clientId: h.emu.demoApp.clientId, teamId: team.teamId });
    await h.server.warden.connections.import({
      id: team.teamId,
      provider: "slack",
      credentials: { bot: botFromInstall(install) },
      metadata: { team_id: team.teamId },
    });
    const member = h.emu.control.createUser(team.teamId, { name: "member" });
    h.emu.control.setAuthorize({ mode: "approve", teamId: team.teamId, userId: member.userId });
    revokedTokens.length = 0;
    const start = await hop(`${h.server.publicUrl}/oauth/slack/install?connection_id=${team.teamId}`);
    const authorize = new URL(start.headers.get("location") ?? "");
    authorize.searchParams.delete("scope");
    authorize.searchParams.set("user_scope", "chat:write");
    const consent = await hop(authorize.toString());
    const page = await hop(consent.headers.get("location") ?? "");
    expect(page.status).toBe(400);
    expect(await page.text()).toContain("did not grant");
    const granted = exchanged.pop() as Json;
    const userToken = String((granted["authed_user"] as Json)["access_token"]);
    expect(h.emu.control.tokenInfo(userToken).state).not.toBe("active");
    const kept = await h.server.warden.connections.get(team.teamId);
    expect(kept.credentials.map((c) => c.kind)).toEqual(["bot"]);
    expect(kept.metadata).toEqual({ team_id: team.teamId });
    const served = await h.server.warden.getToken(team.teamId);
    expect(served).toMatchObject({ kind: "bot", accessToken: install.access_token });
  });

  // Inside an Enterprise Grid org, a person can install org-wide instead: another installation (the
  // org's, whose token is no workspace's own), though the org id is in the workspace's metadata.
  it("refuses an org-wide install for a workspace's connection, and a workspace install for the org's", async () => {
    const { clientId } = h.emu.demoApp;
    const org = "E0GRID1";
    const ws = h.emu.control.createTeam({ name: "grid ws", enterpriseId: org });
    const admin = h.emu.control.createUser(ws.teamId, { name: "admin" });
    const wsInstall = h.emu.control.install({ clientId, teamId: ws.teamId });
    const orgInstall = h.emu.control.install({ clientId, teamId: ws.teamId, enterpriseInstall: true });
    const workspaceMeta = { team_id: ws.teamId, enterprise_id: org, is_enterprise_install: false };
    const orgMeta = { team_id: null, enterprise_id: org, is_enterprise_install: true };
    await h.server.warden.connections.import({
      id: ws.teamId,
      provider: "slack",
      credentials: { bot: botFromInstall(wsInstall) },
      metadata: workspaceMeta,
    });
    await h.server.warden.connections.import({
      id: "acme-org",
      provider: "slack",
      credentials: { bot: botFromInstall(orgInstall) },
      metadata: orgMeta,
    });
    try {
      for (const [id, enterpriseInstall, meta] of [
        [ws.teamId, true, workspaceMeta],
        ["acme-org", false, orgMeta],
      ] as const) {
        h.emu.control.setAuthorize({
          mode: "approve",
          teamId: ws.teamId,
          userId: admin.userId,
          enterpriseInstall,
        });
        revokedTokens.length = 0;
        const page = await installViaBrowser(
          h,
          `${h.server.publicUrl}/oauth/slack/install?connection_id=${id}`,
        );
        expect(page.status, id).toBe(400);
        expect(await page.text()).toContain("different workspace");
        expect(revokedTokens, id).toHaveLength(2);
        expect((await h.server.warden.connections.get(id)).metadata, id).toEqual(meta);
      }
      // The org's own install still reconnects the org's connection.
      h.emu.control.setAuthorize({
        mode: "approve",
        teamId: ws.teamId,
        userId: admin.userId,
        enterpriseInstall: true,
      });
      const back = await installViaBrowser(
        h,
        `${h.server.publicUrl}/oauth/slack/install?connection_id=acme-org`,
      );
      expect(back.status).toBe(303);
      expect((await h.server.warden.connections.get("acme-org")).metadata).toMatchObject(orgMeta);
    } finally {
      h.emu.control.setAuthorize({ enterpriseInstall: false });
      exchanged.length = 0;
    }
  });

  it("leaves a non-rotating installation alone: its bot token is the workspace's, shared", async () => {
    const app = h.emu.control.createApp({ tokenRotation: false });
    const server = await h.start({
      env: { ...h.env, SLACK_CLIENT_ID: app.clientId, SLACK_CLIENT_SECRET: app.clientSecret },
      fetch: recording,
    });
    revokedTokens.length = 0;
    const orphan = await reconnectIntoOther(server, app.clientId);
    expect(orphan["refresh_token"]).toBeUndefined();
    expect(h.emu.control.tokenInfo(String(orphan["access_token"])).state).toBe("active");
    expect(revokedTokens).toEqual([]);
  });
});
