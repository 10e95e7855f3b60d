import type pg from "pg";

/**
 * `config` with `extra` added to its session options (libpq's `options`: `-c name=value …`). pg reads
 * a connection string after the rest of the config, so an `options=` parameter in the URL would replace
 * the config's options outright and drop `extra`; it is taken out of the URL and joined with them
 * instead: the config's first, then the URL's, then `extra`, the later winning where they overlap.
 */
export function withSessionOptions(config: pg.ClientConfig, extra: string): pg.ClientConfig {
  const { connectionString, urlOptions } = takeUrlOptions(config.connectionString);
  return {
    ...config,
    ...(connectionString === undefined ? {} : { connectionString }),
    options: [config.options, urlOptions, extra].filter(Boolean).join(" "),
  };
}

function takeUrlOptions(connectionString: string | undefined): {
  connectionString: string | undefined;
  urlOptions: string | undefined;
} {
  if (connectionString === undefined) return { connectionString, urlOptions: undefined };
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return { connectionString, urlOptions: undefined }; // not a URL (a libpq key=value string): pg's to read
  }
  const urlOptions = url.searchParams.get("options") ?? undefined;
  if (urlOptions === undefined) return { connectionString, urlOptions };
  url.searchParams.delete("options");
  return { connectionString: url.toString(), urlOptions };
}
