// What `connections import` accepts, checked before anything is written: expiry units per form,
// and entries this run could not write (an unconfigured provider, a kind the provider lacks).
import { describe, expect, it } from "vitest";
import { type ImportTargets, parseImportFile, SLACK_KINDS } from "../../src/cli/import-file.js";

const parse = (value: unknown, targets: ImportTargets = { slack: SLACK_KINDS }) =>
  parseImportFile(JSON.stringify(value), { targets });

const snake = (bot: Record<string, unknown>) => ({
  id: "a",
  provider: "slack",
  credentials: { bot: { access_token: "xoxe.xoxb-1-a", ...bot } },
});

describe("expires_at in the snake_case form is epoch seconds, as the HTTP API reads it", () => {
  it("a number is seconds", () => {
    const [input] = parse(snake({ expires_at: 1_800_000_000 }));
    expect(input?.credentials.bot?.expiresAt).toBe(1_800_000_000_000);
  });

  it("an ISO 8601 date is read as such", () => {
    const [input] = parse(snake({ expires_at: "2027-01-01T00:00:00Z" }));
    expect(input?.credentials.bot?.expiresAt).toBe(Date.UTC(2027, 0, 1));
  });

  it("milliseconds are refused, naming the field", () => {
    expect(() => parse([snake({ expires_at: 1_800_000_000_000 })])).toThrow(
      /^\[0\]\.credentials\.bot\.expires_at: must be epoch SECONDS, not milliseconds$/,
    );
  });

  it("a value before 2001 (a lifetime put in the wrong field) is refused", () => {
    expect(() => parse([snake({ expires_at: 43_200 })])).toThrow(
      /^\[0\]\.credentials\.bot\.expires_at: must be epoch seconds; this is before 2001/,
    );
  });
});

describe("expiresAt in the camelCase form is epoch milliseconds, as connections.import reads it", () => {
  const camel = (expiresAt: number) => ({
    id: "a",
    provider: "slack",
    credentials: { bot: { accessToken: "xoxe.xoxb-1-a", expiresAt } },
  });

  it("milliseconds are kept", () => {
    expect(parse(camel(1_800_000_000_000))[0]?.credentials.bot?.expiresAt).toBe(1_800_000_000_000);
  });

  it("seconds are refused rather than read as 1970", () => {
    expect(() => parse([camel(1_800_000_000)])).toThrow(
      /^\[0\]\.credentials\.bot\.expiresAt: must be epoch MILLISECONDS in the camelCase form/,
    );
  });
});

describe("entries this run could not write are refused up front", () => {
  const good = { id: "good", provider: "slack", credentials: { bot: { accessToken: "xoxe.xoxb-1-a" } } };

  it("an unconfigured provider, named by entry", () => {
    const other = { id: "gh", provider: "github", credentials: { default: { accessToken: "gho_1" } } };
    expect(() => parse([good, other])).toThrow(
      /^\[1\]\.provider: "github" is not a provider this CLI can import into \(configured: slack\)$/,
    );
  });

  it("slack without its client credentials", () => {
    expect(() => parse([good], {})).toThrow(
      /^\[0\]\.provider: slack is not configured: set SLACK_CLIENT_ID and SLACK_CLIENT_SECRET/,
    );
    expect(() => parse(good, {})).toThrow(/^provider: slack is not configured/);
  });

  it("a kind the provider does not hold", () => {
    const bad = { id: "d", provider: "slack", credentials: { default: { accessToken: "xoxe.xoxb-1-a" } } };
    expect(() => parse([good, bad])).toThrow(
      /^\[1\]\.credentials\.default: a slack connection holds bot and user credentials, not default$/,
    );
  });
});

describe("an expiry the import would refuse as decades ago is refused before anything is written", () => {
  const good = { id: "good", provider: "slack", credentials: { bot: { accessToken: "xoxe.xoxb-1-a" } } };

  it("an @slack/oauth installation whose expiresAt is a lifetime, not a date", () => {
    // 43200 epoch seconds is January 1970: connections.import refuses it, so after `good` was written.
    const installation = {
      team: { id: "T1" },
      bot: { token: "xoxe.xoxb-1-b", expiresAt: 43_200, scopes: [] },
    };
    expect(() => parse([good, installation])).toThrow(
      /^\[1\]\.credentials\.bot\.expiresAt is 19[0-9-]*T.*, decades ago/,
    );
  });

  it("a snake_case ISO 8601 date decades ago", () => {
    expect(() => parse([good, snake({ expires_at: "1990-01-01T00:00:00Z" })])).toThrow(
      /^\[1\]\.credentials\.bot\.expiresAt is 19[0-9-]*T.*, decades ago/,
    );
  });
});

// Installations as @slack/oauth's InstallProvider hands them to Bolt's InstallationStore (one
// captured from the SDK against the emulator, tokens shortened): metadata as the install callback
// stores it (server/routes/oauth.ts), which events, reinstalls, reconnects and lookups read.
describe("an @slack/oauth Installation gets the install flow's metadata and provider data", () => {
  const workspace = {
    team: { id: "T0ACME123", name: "Acme" },
    enterprise: { id: "E0ORG1234", name: "Acme Org" },
    user: {
      token: "xoxe.xoxp-1-u",
      scopes: ["users:read"],
      id: "U0INSTALL",
      refreshToken: "xoxe-1-u",
      expiresAt: 1_796_618_162,
    },
    tokenType: "bot",
    isEnterpriseInstall: false,
    appId: "A0APP1234",
    authVersion: "v2",
    bot: {
      scopes: ["chat:write"],
      token: "xoxe.xoxb-1-b",
      userId: "U0BOTUSER",
      id: "B0BOT1234",
      refreshToken: "xoxe-1-b",
      expiresAt: 1_796_618_162,
    },
  };

  it("a workspace install of a Grid org: its workspace, its org, its app, its installer and bot", () => {
    const [input] = parse(workspace);
    expect(input?.id).toBe("T0ACME123");
    expect(input?.metadata).toEqual({
      team_id: "T0ACME123",
      team_name: "Acme",
      enterprise_id: "E0ORG1234",
      enterprise_name: "Acme Org",
      is_enterprise_install: false,
      app_id: "A0APP1234",
      authed_user_id: "U0INSTALL",
      bot_user_id: "U0BOTUSER",
    });
    expect(input?.credentials.bot?.providerData).toEqual({ bot_user_id: "U0BOTUSER", bot_id: "B0BOT1234" });
    expect(input?.credentials.user?.providerData).toEqual({ user_id: "U0INSTALL" });
  });

  it("an org-wide install: the org, and no workspace of its own", () => {
    const { team: _, ...rest } = workspace;
    const org = { ...rest, isEnterpriseInstall: true, enterpriseUrl: "https://acme.enterprise.slack.com/" };
    const [input] = parse(org);
    expect(input?.id).toBe("E0ORG1234");
    expect(input?.metadata).toEqual({
      team_id: null,
      team_name: null,
      enterprise_id: "E0ORG1234",
      enterprise_name: "Acme Org",
      is_enterprise_install: true,
      app_id: "A0APP1234",
      authed_user_id: "U0INSTALL",
      bot_user_id: "U0BOTUSER",
    });
  });

  it("a bot-only install outside any org says so with nulls, as the install flow does", () => {
    const { enterprise: _, user, ...rest } = workspace;
    const [input] = parse({ ...rest, user: { id: user.id, scopes: undefined } });
    expect(input?.metadata).toMatchObject({
      enterprise_id: null,
      enterprise_name: null,
      authed_user_id: "U0INSTALL",
    });
    expect(input?.credentials.user).toBeUndefined();
  });
});

// Our two forms store metadata and provider data as given, and tokenwarden reads snake_case keys
// there (team_id, bot_user_id…): a camelCase twin is read by nothing (an uninstall event, a reinstall
// would not find the connection by it). Imported all the same, with a warning naming the key.
describe("a camelCase twin of a key tokenwarden reads, in our forms, is imported with a warning", () => {
  const warningsOf = (value: unknown) => {
    const warnings: string[] = [];
    parseImportFile(JSON.stringify(value), {
      targets: { slack: SLACK_KINDS, github: ["default"] },
      onWarning: (m) => warnings.push(m),
    });
    return warnings;
  };
  const FINDS = "Slack's events and a plain reinstall find a connection under an id of your own by it";
  const REVOKED = "a tokens_revoked event reaches the credential by it";
  const camel = {
    id: "acme",
    provider: "slack",
    credentials: { bot: { accessToken: "xoxe.xoxb-1-a", providerData: { botUserId: "U0BOT" } } },
    metadata: { teamId: "T0ACME", teamName: "Acme", customerId: "cus_1" },
  };

  it("names each such key in metadata and provider data, in either form, by entry", () => {
    expect(warningsOf([camel])).toEqual([
      `[0].metadata.teamId: stored as given, but tokenwarden reads team_id: ${FINDS}`,
      `[0].credentials.bot.providerData.botUserId: stored as given, but tokenwarden reads bot_user_id: ${REVOKED}`,
    ]);
    const snakeForm = {
      id: "acme",
      provider: "slack",
      credentials: { user: { access_token: "xoxe.xoxp-1-a", provider_data: { userId: "U0ME" } } },
      metadata: { enterpriseId: "E0ORG", appId: "A0APP" },
    };
    expect(warningsOf(snakeForm)).toEqual([
      `metadata.enterpriseId: stored as given, but tokenwarden reads enterprise_id: ${FINDS}`,
      "metadata.appId: stored as given, but tokenwarden reads app_id: a plain reinstall tells whose connection this is by it",
      `credentials.user.provider_data.userId: stored as given, but tokenwarden reads user_id: ${REVOKED}`,
    ]);
  });

  it("says nothing beside the snake_case key, for other keys, another provider, or an installation", () => {
    const both = {
      ...camel,
      metadata: { teamId: "T0ACME", team_id: "T0ACME" },
      credentials: {
        bot: { accessToken: "xoxe.xoxb-1-a", providerData: { botUserId: "U0BOT", bot_user_id: "U0BOT" } },
      },
    };
    expect(warningsOf(both)).toEqual([]);
    const bot = { accessToken: "xoxe.xoxb-1-a" };
    expect(warningsOf({ ...camel, metadata: { teamName: "Acme" }, credentials: { bot } })).toEqual([]);
    const github = { id: "gh", provider: "github", credentials: { default: bot }, metadata: { teamId: "x" } };
    expect(warningsOf(github)).toEqual([]);
    const installation = {
      team: { id: "T0ACME" },
      appId: "A0APP",
      bot: { token: "xoxe.xoxb-1-b", scopes: [] },
    };
    expect(warningsOf(installation)).toEqual([]);
  });

  it("says nothing when the input is refused", () => {
    const bad = { id: "bad", provider: "slack", credentials: {} };
    const warnings: string[] = [];
    const run = () =>
      parseImportFile(JSON.stringify([camel, bad]), {
        targets: { slack: SLACK_KINDS },
        onWarning: (m) => warnings.push(m),
      });
    expect(run).toThrow(/^\[1\]: credentials: at least one credential is required/);
    expect(warnings).toEqual([]);
  });
});
