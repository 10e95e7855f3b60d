// The drop-in adapters for Bolt and @slack/web-api will be exported here; not built yet (README,
// top). The entry point exists now so that its name is part of the package from the start.
export {};
