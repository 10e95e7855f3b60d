/** The human form of a Diagnosis: the same facts as the JSON, in sentences. */
import { isNoAnswerLabel } from "../core/classify.js";
import type { Diagnosis, Verdict } from "./diagnosis.js";
import type { TimelineEntry } from "./explain-connection.js";
import { iso } from "./explain-connection.js";

const HEADLINE: Record<Verdict, string> = {
  healthy: "HEALTHY — it works.",
  expired: "EXPIRED — the access token ran out.",
  revoked: "REVOKED — dead until a person reinstalls or re-runs OAuth.",
  inactive: "INACTIVE — the account or installation behind it is gone.",
  invalid: "INVALID — Slack does not accept it, and it cannot be revived.",
  missing_scope: "MISSING SCOPE — the token works but lacks a permission.",
  rate_limited: "RATE LIMITED — Slack asked us to slow down; no verdict on the token.",
  unreachable: "UNREACHABLE — no usable answer from Slack; no verdict on the token.",
  misconfigured: "MISCONFIGURED — the app's client credentials are wrong.",
  unchecked: "NOT CHECKED — a refresh token can only be tested by spending it.",
};

/** Says whose words the error is: Slack's, or ours for an answer that never came or a comparison. */
function errorLine(verdict: Verdict, error: string): string {
  if (isNoAnswerLabel(error)) return `No usable answer from Slack: ${error}`;
  if (verdict === "missing_scope" && error === "missing_scope")
    return "Found: missing_scope (the scopes Slack lists for the token lack one that is required)";
  return `Slack said: ${error}`;
}

export interface RenderOptions {
  /** What was diagnosed: "token xoxe.xoxb-…9f3a (sha256:…)", "connection T123", … */
  subject: string;
  /** A line about what the token is, from its prefix. */
  shapeLine?: string;
  timeline?: TimelineEntry[];
}

/**
 * @example
 * process.stdout.write(renderDiagnosis(d, { subject: "token xoxb-…9f3a" }));
 */
export function renderDiagnosis(d: Diagnosis, o: RenderOptions): string {
  const lines: string[] = [];
  lines.push(`Diagnosis of ${o.subject}`);
  if (o.shapeLine !== undefined) lines.push(`  ${o.shapeLine}`);
  lines.push("");
  lines.push(`Verdict: ${HEADLINE[d.verdict]}`);
  if (d.error !== null) lines.push(errorLine(d.verdict, d.error));
  lines.push(
    d.refreshable === null
      ? "Refreshable: unknown — the answer that would tell did not come."
      : d.refreshable
        ? "Refreshable: yes — a refresh (no person needed) can restore or extend it."
        : "Refreshable: no — a refresh will not help.",
  );
  if (o.timeline !== undefined && o.timeline.length > 0) {
    lines.push("", "What happened (oldest first):");
    for (const t of o.timeline) lines.push(`  ${iso(t.atMs)}  ${(t.kind ?? "").padEnd(4)}  ${t.text}`);
  }
  if (d.causes.length > 0) {
    lines.push("", d.verdict === "healthy" ? "Notes:" : "Why (most likely first):");
    d.causes.forEach((c, i) => {
      lines.push(`  ${i + 1}. [${c.likelihood}] ${c.code}: ${c.explanation}`);
    });
  }
  if (d.fix.length > 0) {
    lines.push("", "What to do:");
    d.fix.forEach((f, i) => {
      lines.push(`  ${i + 1}. ${f}`);
    });
  }
  return `${lines.join("\n")}\n`;
}
