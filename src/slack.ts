// Bolt and @slack/web-api adapters land here (DESIGN.md "tokenwarden/slack").
export {};
