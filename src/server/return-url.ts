/**
 * The redirect back to an app's `return_url` after an install or reconnect. Its `connection_id`
 * says which connection the browser's flow produced; unsigned, anyone could send a logged-in user
 * of the app to `return_url?connection_id=<someone else's>` and have the app bind that connection
 * to the wrong account. With TOKENWARDEN_WEBHOOK_SECRET set, the query is signed:
 *
 *   ...?<the app's own parameters>&connection_id=T123&status=installed&tw_timestamp=<unix s>&tw_signature=v1=<hex>
 *
 * where hex is HMAC-SHA256(HMAC-SHA256(secret, "tokenwarden return_url v1"), everything between `?`
 * and `&tw_signature=`). The app's own
 * parameters are inside what is signed, so a per-user value it put in its return_url (checked
 * against the user's session) binds the answer to that user; the timestamp bounds replays.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Secret } from "../core/secret.js";

export const RETURN_TIMESTAMP_PARAM = "tw_timestamp";
export const RETURN_SIGNATURE_PARAM = "tw_signature";
const SIGNATURE_SEPARATOR = `&${RETURN_SIGNATURE_PARAM}=`;

/**
 * What the signing key is derived with. Not the secret itself: it also signs webhooks, over
 * `<timestamp>.<body>`, and whoever writes an install link chooses the start of the query signed
 * here (`1733490000.type=connection.revoked&…`), so one key would make every redirect a webhook
 * signature for a form-encoded body of the attacker's making.
 */
const KEY_CONTEXT = "tokenwarden return_url v1";

function signQuery(secret: string, query: string): string {
  const key = createHmac("sha256", secret).update(KEY_CONTEXT).digest();
  return `v1=${createHmac("sha256", key).update(query).digest("hex")}`;
}

/**
 * Every name the redirect may carry. Whoever writes an install link writes its return_url, so any
 * of these it already holds is dropped, whichever of them this redirect sets: a cancelled install
 * does not set `connection_id`, and one planted there would come back signed beside the `error`.
 */
const OUR_PARAMS = ["connection_id", "status", "error", RETURN_TIMESTAMP_PARAM, RETURN_SIGNATURE_PARAM];

/**
 * A name as the laxest framework reads it: ASP.NET ignores case (and binds the first value), PHP
 * turns `.` and spaces into `_`, PHP, Rack and qs read `name[…]` as `name`. Compared this way, a
 * look-alike (`Connection_ID`, `connection.id`, `connection_id[]`) counts as ours and is dropped.
 */
const readAs = (name: string) =>
  name
    .replace(/\[.*$/s, "")
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "");
const OURS_READ_AS = new Set(OUR_PARAMS.map(readAs));

/**
 * `returnUrl` with `params` appended after the app's own parameters, signed when `signing` is
 * given. Anything of ours the return_url already held is dropped first, so it cannot ride along
 * inside what is signed.
 */
export function returnUrlWith(
  returnUrl: string,
  params: Record<string, string>,
  signing: { secret: Secret; nowMs: number } | null,
): string {
  const back = new URL(returnUrl);
  for (const name of new Set(back.searchParams.keys())) {
    if (OURS_READ_AS.has(readAs(name))) back.searchParams.delete(name);
  }
  for (const [name, value] of Object.entries(params)) back.searchParams.append(name, value);
  if (signing === null) return back.toString();
  back.searchParams.set(RETURN_TIMESTAMP_PARAM, String(Math.floor(signing.nowMs / 1000)));
  const query = back.search.slice(1);
  // Set as text, not through searchParams: the signature covers these exact bytes, and the app
  // verifies the query as its request line carries it.
  back.search = `${query}${SIGNATURE_SEPARATOR}${signQuery(signing.secret.reveal(), query)}`;
  return back.toString();
}

/**
 * What an app runs on the URL it was sent back to (the README shows the same in a few lines):
 * the signature over the query before it, constant-time, and the timestamp within the window.
 *
 * @example
 * verifyReturnUrl({ secret, url: `https://app.example.com${req.url}`, nowMs: Date.now() });
 */
export function verifyReturnUrl(o: {
  secret: string;
  url: string;
  nowMs: number;
  toleranceSeconds?: number;
}): boolean {
  let query: string;
  try {
    query = new URL(o.url).search.slice(1);
  } catch {
    return false;
  }
  const at = query.lastIndexOf(SIGNATURE_SEPARATOR);
  if (at < 0) return false;
  const signed = query.slice(0, at);
  const given = Buffer.from(query.slice(at + SIGNATURE_SEPARATOR.length));
  const ts = new URLSearchParams(signed).get(RETURN_TIMESTAMP_PARAM) ?? "";
  if (!/^\d{1,12}$/.test(ts)) return false;
  if (Math.abs(o.nowMs / 1000 - Number(ts)) > (o.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(signQuery(o.secret, signed));
  return expected.length === given.length && timingSafeEqual(expected, given);
}
