import { describe, expect, it } from "vitest";
import {
  DEFAULT_DATABASE_URL,
  describeDatabaseUrl,
  loadConfig,
  parseWardenOptions,
  WardenOptionsSchema,
} from "../../src/config.js";
import { TokenwardenError } from "../../src/core/errors.js";
import { logLevelFrom } from "../../src/engine/default-logger.js";

function configError(f: () => unknown): TokenwardenError {
  try {
    f();
  } catch (error) {
    expect(error).toBeInstanceOf(TokenwardenError);
    expect((error as TokenwardenError).code).toBe("config_invalid");
    return error as TokenwardenError;
  }
  throw new Error("expected a config_invalid error");
}

const SLACK = {
  SLACK_CLIENT_ID: "2141029472.691202649728",
  SLACK_CLIENT_SECRET: "e1b9e11dfcd19c1982d5de12921e17e8",
};

describe("loadConfig", () => {
  it("has defaults for an empty environment", () => {
    const c = loadConfig({});
    expect(c.nodeEnv).toBe("development");
    expect(c.isProduction).toBe(false);
    expect(c.database.kind).toBe("sqlite");
    expect(c.database.url.reveal()).toBe(DEFAULT_DATABASE_URL);
    expect(c.encryptionKey).toBeNull();
    expect(c.apiKey).toBeNull();
    expect(c.webhook).toBeNull();
    expect(c.publicUrl).toBeNull();
    expect(c.slack).toBeNull();
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("reads every variable of the Contract", () => {
    const c = loadConfig({
      NODE_ENV: "production",
      TOKENWARDEN_DATABASE_URL: "postgres://app:hunter2@127.0.0.1:5432/tw",
      TOKENWARDEN_ENCRYPTION_KEY: "k1:AAAA",
      TOKENWARDEN_API_KEY: "an-api-key-of-some-length",
      TOKENWARDEN_WEBHOOK_URL: "https://hooks.example/tw",
      TOKENWARDEN_WEBHOOK_SECRET: "whsec",
      TOKENWARDEN_PUBLIC_URL: "https://tw.example/",
      ...SLACK,
      SLACK_SIGNING_SECRET: "8f742231b10e8888abcd99yyyzzz85a5",
      SLACK_BASE_URL: "http://127.0.0.1:3999/",
      UNRELATED: "ignored",
    });
    expect(c.isProduction).toBe(true);
    expect(c.database).toMatchObject({ kind: "postgres", display: "postgres://app:***@127.0.0.1:5432/tw" });
    expect(c.database.url.reveal()).toBe("postgres://app:hunter2@127.0.0.1:5432/tw");
    expect(c.encryptionKey?.reveal()).toBe("k1:AAAA");
    expect(c.apiKey?.reveal()).toBe("an-api-key-of-some-length");
    expect(c.webhook?.url).toBe("https://hooks.example/tw");
    expect(c.webhook?.secret.reveal()).toBe("whsec");
    expect(c.publicUrl).toBe("https://tw.example");
    expect(c.slack?.clientId).toBe(SLACK.SLACK_CLIENT_ID);
    expect(c.slack?.clientSecret.reveal()).toBe(SLACK.SLACK_CLIENT_SECRET);
    expect(c.slack?.signingSecret?.reveal()).toBe("8f742231b10e8888abcd99yyyzzz85a5");
    expect(c.slack?.baseUrl).toBe("http://127.0.0.1:3999");
  });

  it("prints no secret when logged whole", () => {
    const c = loadConfig({
      TOKENWARDEN_DATABASE_URL: "postgresql://app:hunter2@db/tw",
      TOKENWARDEN_ENCRYPTION_KEY: "THE-KEY",
      ...SLACK,
    });
    const printed = JSON.stringify(c);
    for (const secret of ["hunter2", "THE-KEY", SLACK.SLACK_CLIENT_SECRET])
      expect(printed).not.toContain(secret);
  });

  it("treats empty variables as unset", () => {
    const c = loadConfig({ TOKENWARDEN_DATABASE_URL: "", SLACK_BASE_URL: "", TOKENWARDEN_WEBHOOK_URL: "" });
    expect(c.database.url.reveal()).toBe(DEFAULT_DATABASE_URL);
    expect(c.webhook).toBeNull();
  });

  it("names the bad variables and never echoes a value", () => {
    const secretish = "postgres-but-not-really:hunter2-secret";
    const e = configError(() =>
      loadConfig({
        TOKENWARDEN_DATABASE_URL: secretish,
        SLACK_BASE_URL: "ftp://secret-host-value",
        TOKENWARDEN_WEBHOOK_URL: "not a url with-secret-inside",
      }),
    );
    expect(e.message).toContain("TOKENWARDEN_DATABASE_URL");
    expect(e.message).toContain("SLACK_BASE_URL");
    expect(e.message).toContain("TOKENWARDEN_WEBHOOK_URL");
    expect(e.message).not.toContain("hunter2");
    expect(e.message).not.toContain("secret-host-value");
    expect(e.message).not.toContain("with-secret-inside");
  });

  it("requires an encryption key in production", () => {
    expect(configError(() => loadConfig({ NODE_ENV: "production" })).message).toContain(
      "TOKENWARDEN_ENCRYPTION_KEY: is required when NODE_ENV=production",
    );
  });

  it("requires a webhook secret with a webhook URL", () => {
    expect(
      configError(() => loadConfig({ TOKENWARDEN_WEBHOOK_URL: "https://hooks.example/x" })).message,
    ).toContain("TOKENWARDEN_WEBHOOK_SECRET");
  });

  // Node's fetch refuses a URL with a user name or password: every webhook would fail as
  // connection_failed until given up on three days on, every call to Slack as a network error; the
  // public URL's would be copied into every reconnect link.
  it.each([
    ["TOKENWARDEN_WEBHOOK_URL", { TOKENWARDEN_WEBHOOK_SECRET: "whsec" }],
    ["TOKENWARDEN_PUBLIC_URL", {}],
    ["SLACK_BASE_URL", {}],
  ])("refuses %s with credentials in it, without echoing them", (name, others) => {
    const e = configError(() =>
      loadConfig({ [name]: "https://hooks-user:hunter2-pass@hooks.example/tw", ...others }),
    );
    expect(e.message).toContain(name);
    expect(e.message).toContain("user name or password");
    expect(e.message).not.toContain("hunter2");
    expect(e.message).not.toContain("hooks-user");
  });

  it("requires the Slack client id and secret together", () => {
    const e = configError(() => loadConfig({ SLACK_CLIENT_SECRET: "only-the-secret-value" }));
    expect(e.message).toContain("SLACK_CLIENT_ID");
    expect(e.message).not.toContain("only-the-secret-value");
    expect(configError(() => loadConfig({ SLACK_SIGNING_SECRET: "x" })).message).toContain(
      "SLACK_CLIENT_SECRET",
    );
  });

  it("reads the log level and the return URL origins, and refuses bad ones without echoing them", () => {
    expect(loadConfig({}).logLevel).toBe("warn");
    expect(loadConfig({}).returnUrlOrigins).toEqual([]);
    const c = loadConfig({
      TOKENWARDEN_LOG_LEVEL: "debug",
      TOKENWARDEN_RETURN_URL_ORIGINS: "https://app.example/settings, http://127.0.0.1:5173",
    });
    expect(c.logLevel).toBe("debug");
    expect(c.returnUrlOrigins).toEqual(["https://app.example", "http://127.0.0.1:5173"]);
    const e = configError(() =>
      loadConfig({
        TOKENWARDEN_LOG_LEVEL: "loudSECRET",
        TOKENWARDEN_RETURN_URL_ORIGINS: "https://ok.example,bogusSECRET",
      }),
    );
    expect(e.message).toContain("TOKENWARDEN_LOG_LEVEL: must be one of fatal, error, warn");
    expect(e.message).toContain("TOKENWARDEN_RETURN_URL_ORIGINS");
    expect(e.message).not.toContain("SECRET");
    // The library's default logger reads the level alone, with the same message.
    expect(logLevelFrom({ TOKENWARDEN_LOG_LEVEL: "trace" })).toBe("trace");
    // Any case, as pino took it before it was checked here.
    expect(logLevelFrom({ TOKENWARDEN_LOG_LEVEL: " INFO " })).toBe("info");
    expect(loadConfig({ TOKENWARDEN_LOG_LEVEL: "Warn" }).logLevel).toBe("warn");
    expect(logLevelFrom({})).toBe("warn");
    const alone = configError(() => logLevelFrom({ TOKENWARDEN_LOG_LEVEL: "loudSECRET" }));
    expect(alone.message).toContain("TOKENWARDEN_LOG_LEVEL: must be one of");
    expect(alone.message).not.toContain("SECRET");
  });

  it("reads the event retention in days: 90 by default, 0 keeps events forever, anything else refused", () => {
    expect(loadConfig({}).eventRetentionMs).toBe(90 * 86_400_000);
    expect(loadConfig({ TOKENWARDEN_EVENT_RETENTION_DAYS: "30" }).eventRetentionMs).toBe(30 * 86_400_000);
    expect(loadConfig({ TOKENWARDEN_EVENT_RETENTION_DAYS: "0" }).eventRetentionMs).toBeNull();
    for (const bad of ["-1", "1.5", "ninety", "1e3"]) {
      const e = configError(() => loadConfig({ TOKENWARDEN_EVENT_RETENTION_DAYS: bad }));
      expect(e.message).toContain("TOKENWARDEN_EVENT_RETENTION_DAYS: must be a whole number of days");
    }
  });

  it("refuses a short API key without printing it", () => {
    const e = configError(() => loadConfig({ TOKENWARDEN_API_KEY: "short-key" }));
    expect(e.message).toContain("TOKENWARDEN_API_KEY");
    expect(e.message).not.toContain("short-key");
  });

  it("accepts sqlite and postgres URL forms", () => {
    for (const url of [
      "sqlite:/tmp/a.db",
      "sqlite::memory:",
      "postgres://h/db",
      "postgresql://u@h:5432/db",
    ]) {
      expect(loadConfig({ TOKENWARDEN_DATABASE_URL: url }).database.url.reveal()).toBe(url);
    }
    expect(describeDatabaseUrl("sqlite:./x.db")).toBe("sqlite:./x.db");
  });
});

describe("WardenOptionsSchema", () => {
  it("accepts the documented library options and keeps injected dependencies", () => {
    const clock = { now: () => 0 };
    const options = {
      database: "sqlite:./tokenwarden.db",
      encryptionKey: "k",
      providers: {
        slack: { clientId: "1.2", clientSecret: "s", signingSecret: "x", baseUrl: "http://127.0.0.1:1" },
      },
      clock,
    };
    expect(parseWardenOptions(options)).toBe(options);
    expect(WardenOptionsSchema.parse(options)).toMatchObject({ clock });
    expect(parseWardenOptions({})).toEqual({});
  });

  it("names a bad or misspelt option without echoing its value", () => {
    const e = configError(() =>
      parseWardenOptions({
        providers: { slack: { clientId: "1.2", clientSecret: "", baseUrl: "nope-secretvalue" } },
      }),
    );
    expect(e.message).toContain("providers.slack.clientSecret");
    expect(e.message).toContain("providers.slack.baseUrl");
    expect(e.message).not.toContain("nope-secretvalue");
    expect(
      configError(() =>
        parseWardenOptions({ providers: { slack: { clientId: "1", clientSecret: "s", clientSecrt: "t" } } }),
      ).message,
    ).toContain("clientSecrt");
    expect(configError(() => parseWardenOptions({ database: "mysql://x" })).message).toContain("database");
  });

  it("refuses a publicUrl or a Slack baseUrl with credentials in it, without echoing them", () => {
    const e = configError(() =>
      parseWardenOptions({
        publicUrl: "https://u-name:p-word@tw.example",
        providers: {
          slack: { clientId: "1", clientSecret: "s", baseUrl: "https://u-name:p-word@slack.example" },
        },
      }),
    );
    expect(e.message).toContain("publicUrl");
    expect(e.message).toContain("providers.slack.baseUrl");
    expect(e.message).not.toContain("p-word");
    expect(e.message).not.toContain("u-name");
  });
});
