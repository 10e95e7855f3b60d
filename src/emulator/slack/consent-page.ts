// The HTML pages of the authorize step: a consent screen with Allow / Cancel (a form POST back to the
// emulator, which then redirects like Slack does, §2.2) and the error page Slack shows instead of
// redirecting when the request itself is bad (§2.1 "Errors").
import { escapeHtml } from "./http-io.js";

export const DECISION_PATH = "/oauth/v2/authorize/decision";

export interface ConsentView {
  requestId: string;
  appName: string;
  teamName: string;
  userName: string;
  enterpriseInstall: boolean;
  botScopes: string[];
  userScopes: string[];
  redirectUri: string;
}

function page(title: string, inner: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;color:#1d1c1d}
button{font-size:1rem;padding:.5rem 1.5rem;margin-right:.5rem}ul{line-height:1.6}</style></head>
<body>${inner}</body></html>`;
}

function scopeList(label: string, scopes: string[]): string {
  if (scopes.length === 0) return "";
  return `<h2>${escapeHtml(label)}</h2><ul>${scopes.map((s) => `<li><code>${escapeHtml(s)}</code></li>`).join("")}</ul>`;
}

export function renderConsentPage(v: ConsentView): string {
  const where = v.enterpriseInstall ? `the whole organisation of ${v.teamName}` : v.teamName;
  return page(
    `${v.appName} is requesting permission`,
    `<h1>${escapeHtml(v.appName)} is requesting permission to access ${escapeHtml(where)}</h1>
<p>Signed in as <strong>${escapeHtml(v.userName)}</strong> (Slack emulator).</p>
${scopeList("As a bot, it will be able to", v.botScopes)}
${scopeList("On your behalf, it will be able to", v.userScopes)}
<p>You will be sent back to <code>${escapeHtml(v.redirectUri)}</code>.</p>
<form method="post" action="${DECISION_PATH}">
<input type="hidden" name="request" value="${escapeHtml(v.requestId)}">
<button type="submit" name="decision" value="allow" id="allow">Allow</button>
<button type="submit" name="decision" value="cancel" id="cancel">Cancel</button>
</form>`,
  );
}

export function renderErrorPage(error: string, detail: string): string {
  return page(
    "Slack emulator: authorization error",
    `<h1>Something went wrong when authorizing this app.</h1>
<p>Error: <code id="error">${escapeHtml(error)}</code></p><p>${escapeHtml(detail)}</p>`,
  );
}
