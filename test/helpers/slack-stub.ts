/** A Slack that answers every refresh grant with a new pair, counting the calls (no HTTP). */
export function slackStub() {
  let calls = 0;
  const fetch = async () => {
    calls++;
    const n = calls;
    const body = JSON.stringify({
      ok: true,
      access_token: `xoxe.xoxb-new-${n}`,
      refresh_token: `xoxe-new-${n}`,
      expires_in: 43_200,
      token_type: "bot",
      scope: "chat:write",
    });
    return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
  };
  return { fetch, calls: () => calls };
}
