// Databases holding @slack/oauth installations imported before their metadata was stored as the
// install flow stores it (camelCase teamName, enterpriseId, enterpriseName, appId, isEnterpriseInstall;
// no team_id) get the install flow's keys from a migration, in both dialects: added where absent,
// never overwriting, never removing, and only on rows no other writer can have produced.
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Store } from "../../src/core/ports.js";
import type { NewConnection } from "../../src/core/types.js";
import { createPgSchema, type PgSchema } from "../helpers/pg-schema.js";
import { tokens } from "../helpers/store-fixtures.js";
import { openSealedStore, STORE_KINDS } from "../helpers/store-under-test.js";
import { createTmpSqlite, type TmpSqlite } from "../helpers/tmp-sqlite.js";

const KEY = "k1:Zm9yLXRlc3RzLW9ubHktb2xkLWtleS0wMTIzNDU2Nzg=";

/** A connection as `connections import` of an Installation wrote it before: bot (and user) credentials. */
function legacy(
  id: string,
  metadata: Record<string, unknown>,
  o: { user?: string; provider?: string; botData?: Record<string, unknown> } = {},
): NewConnection {
  return {
    id,
    provider: o.provider ?? "slack",
    metadata,
    credentials: [
      {
        kind: "bot",
        tokens: tokens(`${id}-bot`),
        providerData: { bot_user_id: `UB${id}`, bot_id: `B${id}`, ...o.botData },
        refreshDueAtMs: null,
      },
      ...(o.user === undefined
        ? []
        : [
            {
              kind: "user" as const,
              tokens: tokens(`${id}-user`, { tokenType: "user" }),
              providerData: { user_id: o.user },
              refreshDueAtMs: null,
            },
          ]),
    ],
  };
}

const BOLT_ORG = { enterpriseId: "E0ORG", enterpriseName: "Acme Org", appId: "A0APP" };

/** What each row holds before the migration, and what it must hold after. */
const ROWS: Array<{ what: string; row: NewConnection; after: Record<string, unknown> | "unchanged" }> = [
  {
    what: "a workspace install of a Grid org, with a user token",
    row: legacy("T0WS", { teamName: "Acme", ...BOLT_ORG }, { user: "U0INSTALL" }),
    after: {
      teamName: "Acme",
      ...BOLT_ORG,
      team_id: "T0WS",
      team_name: "Acme",
      enterprise_id: "E0ORG",
      enterprise_name: "Acme Org",
      is_enterprise_install: false,
      app_id: "A0APP",
      authed_user_id: "U0INSTALL",
      bot_user_id: "UBT0WS",
    },
  },
  {
    what: "the org-wide install of that org, bot only",
    row: legacy("E0ORG", { ...BOLT_ORG, isEnterpriseInstall: true }),
    after: {
      ...BOLT_ORG,
      isEnterpriseInstall: true,
      team_id: null,
      team_name: null,
      enterprise_id: "E0ORG",
      enterprise_name: "Acme Org",
      is_enterprise_install: true,
      app_id: "A0APP",
      authed_user_id: null,
      bot_user_id: "UBE0ORG",
    },
  },
  {
    what: "a workspace install a health check has since taught its team_id: what it learned stays",
    row: legacy("T0CHECKED", { teamName: "Checked", appId: "A0APP", team_id: "T0CHECKED" }),
    after: {
      teamName: "Checked",
      appId: "A0APP",
      team_id: "T0CHECKED",
      team_name: "Checked",
      enterprise_id: null,
      enterprise_name: null,
      is_enterprise_install: false,
      app_id: "A0APP",
      authed_user_id: null,
      bot_user_id: "UBT0CHECKED",
    },
  },
  {
    what: "a workspace reinstalled since: the install flow's keys are all there and win",
    row: legacy("T0BACK", {
      teamName: "Old name",
      appId: "A0APP",
      team_id: "T0BACK",
      team_name: "New name",
      enterprise_id: null,
      enterprise_name: null,
      is_enterprise_install: false,
      app_id: "A0APP",
      authed_user_id: "U0OTHER",
      bot_user_id: "U0BOTNOW",
    }),
    after: "unchanged",
  },
  {
    // With enterprise_id and no team_id it would read as the org-wide install of E0ORG.
    what: "an id of the operator's own: not an import of an Installation (its id would be Slack's)",
    row: legacy("acme-prod", { teamName: "Acme", enterpriseId: "E0ORG" }),
    after: "unchanged",
  },
  {
    // The contract's own example (`metadata: { teamName: "Acme" }`) under an id of the operator's
    // whose shape is a Slack id's; every refresh records the workspace Slack names (team_id).
    what: "an id of the operator's own shaped like a workspace's, which Slack says is not its workspace",
    row: legacy("TESTCO", { teamName: "Test Co" }, { botData: { team_id: "T0REALWS", app_id: "A0APP" } }),
    after: "unchanged",
  },
  {
    what: "an org-wide install's id shape, which Slack says is another org",
    row: legacy(
      "E0LOOKS",
      { enterpriseId: "E0LOOKS", isEnterpriseInstall: true },
      { botData: { enterprise_id: "E0REALORG", is_enterprise_install: true } },
    ),
    after: "unchanged",
  },
  {
    what: "a workspace install refreshed since: Slack's team_id in its provider data is its id",
    row: legacy("T0FRESH", { teamName: "Fresh" }, { botData: { team_id: "T0FRESH", team_name: "Fresh" } }),
    after: {
      teamName: "Fresh",
      team_id: "T0FRESH",
      team_name: "Fresh",
      enterprise_id: null,
      enterprise_name: null,
      is_enterprise_install: false,
      app_id: null,
      authed_user_id: null,
      bot_user_id: "UBT0FRESH",
    },
  },
  {
    what: "keys of the operator's own beside camelCase ones: metadata given by hand",
    row: legacy("T0HAND", { teamName: "Acme", customer_id: "cus_42" }),
    after: "unchanged",
  },
  {
    what: "an org-wide install whose id is not its org",
    row: legacy("E0OTHER", { enterpriseId: "E0ORG", isEnterpriseInstall: true }),
    after: "unchanged",
  },
  {
    what: "another provider's connection",
    row: legacy("T0GH", { teamName: "Acme" }, { provider: "github" }),
    after: "unchanged",
  },
  {
    what: "a connection whose metadata names nothing camelCase",
    row: legacy("T0PLAIN", { team_id: "T0PLAIN" }),
    after: "unchanged",
  },
];

describe.each(STORE_KINDS)("migration 0012: imported @slack/oauth installations (%s)", (kind) => {
  let store: Store;
  let sqlite: TmpSqlite | null = null;
  let pg: PgSchema | null = null;
  /** Forgets that migration 0012 ran, as on a database last migrated by the previous release. */
  let forget0012: () => Promise<void>;

  beforeAll(async () => {
    if (kind === "sqlite") {
      sqlite = await createTmpSqlite();
      const path = sqlite.path;
      store = await openSealedStore("sqlite", path, KEY);
      forget0012 = async () => {
        const db = new Database(path);
        db.prepare("DELETE FROM schema_migrations WHERE version = 12").run();
        db.close();
      };
    } else {
      const db = await createPgSchema("bolt-metadata-migration");
      pg = db;
      store = await openSealedStore("postgres", db.schema, KEY);
      forget0012 = async () => {
        await db.admin.query(`DELETE FROM "${db.schema}".schema_migrations WHERE version = 12`);
      };
    }
    await store.migrate();
    for (const { row } of ROWS) await store.putConnection(row, 1_000, []);
    await forget0012();
  });
  afterAll(async () => {
    await store?.close();
    await sqlite?.remove();
    await pg?.drop();
  });

  it("adds the install flow's metadata to the rows an import of an Installation wrote, and only to them", async () => {
    expect(await store.migrate()).toEqual(["0012_bolt_installation_metadata"]);
    for (const { what, row, after } of ROWS) {
      const stored = await store.getConnection(row.id);
      expect(stored?.metadata, what).toEqual(after === "unchanged" ? row.metadata : after);
    }
  });

  it("after it, both lookups find the installations by their metadata, and the org's only as the org", async () => {
    const find = (q: { teamId?: string; enterpriseId?: string }) =>
      store.findConnectionsByInstallation({ provider: "slack", limit: 10, ...q });
    expect(await find({ teamId: "T0WS" })).toEqual(["T0WS"]);
    expect(await find({ enterpriseId: "E0ORG" })).toEqual(["E0ORG"]);
  });

  it("running it again changes nothing", async () => {
    const before = await Promise.all(ROWS.map(({ row }) => store.getConnection(row.id)));
    await forget0012();
    expect(await store.migrate()).toEqual(["0012_bolt_installation_metadata"]);
    const after = await Promise.all(ROWS.map(({ row }) => store.getConnection(row.id)));
    expect(after.map((c) => c?.metadata)).toEqual(before.map((c) => c?.metadata));
  });
});
