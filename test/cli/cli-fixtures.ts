// What the CLI tests share: a workspace to import, and the environment pointing the CLI at a store.
import type { SlackEmulator } from "../../src/emulator/index.js";

/**
 * A new workspace with the demo app installed by a new user: its ids and the tokens to import
 * (the user's own pair too, when `userScopes` asks for one).
 */
export function installWorkspace(
  emu: SlackEmulator,
  botScopes: string[] = ["chat:write"],
  userScopes?: string[],
) {
  const team = emu.control.createTeam({ name: "Acme" });
  const { userId } = emu.control.createUser(team.teamId);
  const body = emu.control.install({
    clientId: emu.demoApp.clientId,
    teamId: team.teamId,
    userId,
    botScopes,
    ...(userScopes === undefined ? {} : { userScopes }),
  });
  const user = (body["authed_user"] ?? {}) as Record<string, unknown>;
  return {
    teamId: team.teamId,
    userId,
    bot: body["access_token"] as string,
    refresh: body["refresh_token"] as string,
    user: user["access_token"] as string | undefined,
    userRefresh: user["refresh_token"] as string | undefined,
    body,
  };
}

/** The CLI's environment: this SQLite file, this key, the emulator as Slack with its demo app. */
export function cliEnv(emu: SlackEmulator, sqlitePath: string, key: string): Record<string, string> {
  return {
    TOKENWARDEN_DATABASE_URL: `sqlite:${sqlitePath}`,
    TOKENWARDEN_ENCRYPTION_KEY: key,
    SLACK_CLIENT_ID: emu.demoApp.clientId,
    SLACK_CLIENT_SECRET: emu.demoApp.clientSecret,
    SLACK_BASE_URL: emu.url,
  };
}
