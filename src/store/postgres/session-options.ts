import type pg from "pg";

/**
 * `config` with `extra` added to its session options (libpq's `options`: `-c name=value …`). pg reads
 * a connection string after the rest of the config, so an `options=` parameter in the URL would replace
 * the config's options outright and drop `extra`; it is taken out of the URL and joined with them
 * instead: the config's (or PGOPTIONS, which pg reads only when the config has none), then the URL's,
 * then `extra`, the later winning where they overlap.
 */
export function withSessionOptions(config: pg.ClientConfig, extra: string): pg.ClientConfig {
  const { connectionString, urlOptions } = takeUrlOptions(config.connectionString);
  return {
    ...config,
    ...(connectionString === undefined ? {} : { connectionString }),
    options: [config.options ?? process.env["PGOPTIONS"], urlOptions, extra].filter(Boolean).join(" "),
  };
}

/**
 * Only the query string is read and rewritten, not the whole URL: `postgres://user@/db?host=/socket`
 * (a Unix socket, no host before the path) is not a URL to `new URL`, but pg accepts it.
 */
function takeUrlOptions(connectionString: string | undefined): {
  connectionString: string | undefined;
  urlOptions: string | undefined;
} {
  const at = connectionString?.indexOf("?") ?? -1;
  if (connectionString === undefined || at === -1) return { connectionString, urlOptions: undefined };
  const query = new URLSearchParams(connectionString.slice(at + 1));
  const urlOptions = query.get("options") ?? undefined;
  if (urlOptions === undefined) return { connectionString, urlOptions };
  query.delete("options");
  const rest = query.toString();
  return { connectionString: connectionString.slice(0, at) + (rest === "" ? "" : `?${rest}`), urlOptions };
}
