// The Slack emulator's public entry point (`tokenwarden/emulator`).
export {};
