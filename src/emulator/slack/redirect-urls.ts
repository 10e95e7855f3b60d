// Which redirect_uri values an app accepts (slack-api.md §2.1): equal to, or a sub-path of, a configured
// Redirect URL, and no fragment. Emulator leniency, documented in the README: for a loopback Redirect URL
// (127.0.0.1, localhost, [::1]) any loopback host and any port match, so tests can use port 0 servers.

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

export function isAllowedRedirect(configured: readonly string[], candidate: string): boolean {
  let u: URL;
  try {
    u = new URL(candidate);
  } catch {
    return false;
  }
  if (u.hash !== "" || candidate.includes("#")) return false;
  return configured.some((c) => matches(c, u));
}

function matches(configuredUrl: string, u: URL): boolean {
  let c: URL;
  try {
    c = new URL(configuredUrl);
  } catch {
    return false;
  }
  if (c.protocol !== u.protocol) return false;
  const loopback = LOOPBACK.has(c.hostname) && LOOPBACK.has(u.hostname);
  if (!loopback && (c.hostname !== u.hostname || c.port !== u.port)) return false;
  if (c.pathname === "/" || u.pathname === c.pathname) return true;
  const prefix = c.pathname.endsWith("/") ? c.pathname : `${c.pathname}/`;
  return u.pathname.startsWith(prefix);
}
