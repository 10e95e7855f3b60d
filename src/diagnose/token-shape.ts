/**
 * What a Slack token is, from its prefix alone (slack-api.md §1.1), and how to
 * name it without printing it. No network call: this is the step `diagnose`
 * takes before it asks Slack anything.
 */
import { createHash } from "node:crypto";
import type { TokenKind } from "./diagnosis.js";

export interface TokenShape {
  kind: TokenKind;
  /** `xoxe.` access tokens and `xoxe-` refresh tokens come from an app with token rotation on. */
  rotating: boolean;
  /** The recognised prefix (`xoxe.xoxb-`, `xoxb-`, …), or null. */
  prefix: string | null;
  /** A human label: "rotating bot access token", "app-level token", … */
  label: string;
}

const SHAPES: ReadonlyArray<{ prefix: string; shape: Omit<TokenShape, "prefix"> }> = [
  // Longest prefixes first: `xoxe.xoxb-` must not be read as `xoxe-`.
  { prefix: "xoxe.xoxb-", shape: { kind: "bot", rotating: true, label: "rotating bot access token" } },
  { prefix: "xoxe.xoxp-", shape: { kind: "user", rotating: true, label: "rotating user access token" } },
  { prefix: "xoxe-", shape: { kind: "refresh", rotating: true, label: "refresh token" } },
  { prefix: "xoxb-", shape: { kind: "bot", rotating: false, label: "long-lived bot token" } },
  { prefix: "xoxp-", shape: { kind: "user", rotating: false, label: "long-lived user token" } },
  { prefix: "xapp-", shape: { kind: "unknown", rotating: false, label: "app-level token" } },
  { prefix: "xwfp-", shape: { kind: "unknown", rotating: false, label: "workflow token" } },
  { prefix: "xoxa-", shape: { kind: "unknown", rotating: false, label: "legacy workspace-app token" } },
];

/**
 * Recognises a token by its prefix. Slack says to treat tokens as opaque
 * (§1.1), so this only labels; every verdict still comes from Slack's answer.
 *
 * @example
 * recognizeToken("xoxe.xoxb-1-abc"); // { kind: "bot", rotating: true, prefix: "xoxe.xoxb-", label: "rotating bot access token" }
 */
export function recognizeToken(token: string): TokenShape {
  for (const { prefix, shape } of SHAPES) if (token.startsWith(prefix)) return { ...shape, prefix };
  return { kind: "unknown", rotating: false, prefix: null, label: "unrecognised token" };
}

/**
 * A short, safe name for a token: its prefix, the last 4 characters and the
 * first 8 hex of its SHA-256, e.g. `xoxe.xoxb-…9f3a (sha256:1c2d3e4f)`. Never
 * enough to use it; enough to match it against a secret store.
 *
 * @example
 * fingerprint("xoxb-123-456-abcdefgh"); // "xoxb-…efgh (sha256:…)"
 */
export function fingerprint(token: string): string {
  const hash = createHash("sha256").update(token).digest("hex").slice(0, 8);
  const { prefix } = recognizeToken(token);
  // A short token would be mostly shown by its tail: then the hash alone names it.
  const tail = token.length >= 24 ? token.slice(-4) : "";
  return `${prefix ?? ""}…${tail} (sha256:${hash})`;
}

/**
 * Why a pasted value cannot be a Slack token, or null when nothing rules it out: a Slack token is
 * printable ASCII (`xoxb-…`, `xoxe.xoxp-…`). Copying one out of a chat or a rich-text page brings
 * typographic quotes or invisible characters along, which `fetch` refuses to put in a header, so
 * without this check the diagnosis would blame the network. Names the character by code point,
 * never by the token around it.
 *
 * @example
 * foreignCharacter("\u201cxoxb-1-abc\u201d"); // "a typographic quote (U+201C)"
 */
export function foreignCharacter(token: string): string | null {
  const found = /[^\x21-\x7e]/u.exec(token)?.[0];
  if (found === undefined) return null;
  const codePoint = `U+${(found.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
  if (/[\u2018-\u201f\u00ab\u00bb\u2039\u203a]/u.test(found)) return `a typographic quote (${codePoint})`;
  if (/\s/u.test(found)) return `whitespace (${codePoint})`;
  // Zero-width and bidi marks, soft hyphen, word joiner, BOM: invisible when pasted.
  if (/[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]/u.test(found))
    return `an invisible character (${codePoint})`;
  if (/\p{Cc}/u.test(found)) return `a control character (${codePoint})`;
  return `a non-ASCII character (${codePoint})`;
}
