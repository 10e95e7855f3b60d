// Outgoing Events API deliveries (slack-api.md §6): signed envelopes, retries with the same event_id,
// and a record of every attempt so tests can await and inspect them.
import { createHmac } from "node:crypto";
import type { EmulatorClock } from "./clock.js";
import { newEventId, newHexSecret } from "./identifiers.js";
import type { AppRecord, DomainEvent, InstallationRecord } from "./model.js";

export interface DeliveryAttempt {
  /** 0 for the first attempt, then 1, 2, 3 as sent in `X-Slack-Retry-Num`. */
  retryNum: number;
  retryReason: string | null;
  /** HTTP status of the app's answer; null when there was none. */
  status: number | null;
  error: string | null;
  /** `X-Slack-Request-Timestamp` sent (emulator clock, seconds). */
  timestamp: number;
}

export interface Delivery {
  eventId: string;
  /** Inner event type (`tokens_revoked`, `app_uninstalled`) or `url_verification`. */
  type: string;
  appId: string;
  teamId: string | null;
  url: string | null;
  /** The raw JSON body sent (the bytes the signature covers). */
  body: string;
  state: "pending" | "delivered" | "failed" | "no_url";
  attempts: DeliveryAttempt[];
}

export interface EventDispatcherOptions {
  clock: EmulatorClock;
  /** Used when the app has no events URL of its own. */
  defaultEventsUrl: string | null;
  /** Delay before each retry; its length is the number of retries. Slack: ≈0, 1 min, 5 min (§6.6). */
  retryDelaysMs: number[];
  /** Slack waits 3 s for a 2xx (§6.1). */
  timeoutMs: number;
}

/** `v0=` + hex HMAC-SHA256 over `v0:{timestamp}:{raw body}` with the signing secret (§6.4). */
export function signSlackRequest(signingSecret: string, timestamp: number, body: string): string {
  return `v0=${createHmac("sha256", signingSecret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
}

export class EventDispatcher {
  readonly deliveries: Delivery[] = [];
  readonly #pending = new Set<Promise<void>>();
  readonly #options: EventDispatcherOptions;
  readonly #closing = new AbortController();

  constructor(options: EventDispatcherOptions) {
    this.#options = options;
  }

  set defaultEventsUrl(url: string | null) {
    this.#options.defaultEventsUrl = url;
  }

  /** Where `app`'s events go: its own URL, else the emulator's default (`--events-url`). */
  urlFor(app: AppRecord): string | null {
    return app.eventsUrl ?? this.#options.defaultEventsUrl;
  }

  /** Queues one envelope per domain event, in the order given (`tokens_revoked` first, §9.6). */
  dispatch(app: AppRecord, events: DomainEvent[]): void {
    for (const event of events) {
      const body = JSON.stringify(this.#envelope(app, event));
      this.#start(app, event.type, event.installation, body, JSON.parse(body).event_id as string);
    }
  }

  #envelope(app: AppRecord, event: DomainEvent): Record<string, unknown> {
    const inst = event.installation;
    const nowSeconds = this.#options.clock.now() / 1000;
    const teamId = inst.teamId ?? inst.enterpriseId;
    const inner: Record<string, unknown> = { type: event.type };
    if (event.type === "tokens_revoked") inner["tokens"] = event.tokens;
    inner["event_ts"] = nowSeconds.toFixed(6);
    return {
      token: app.verificationToken,
      team_id: teamId,
      enterprise_id: inst.enterpriseId,
      api_app_id: app.appId,
      event: inner,
      type: "event_callback",
      event_id: newEventId(),
      event_time: Math.floor(nowSeconds),
      authorizations: [
        {
          enterprise_id: inst.enterpriseId,
          team_id: inst.teamId,
          user_id: inst.installerUserId,
          is_bot: false,
          is_enterprise_install: inst.isEnterpriseInstall,
        },
      ],
      is_ext_shared_channel: false,
      context_team_id: inst.teamId,
      context_enterprise_id: inst.enterpriseId,
    };
  }

  #start(app: AppRecord, type: string, inst: InstallationRecord, body: string, eventId: string): void {
    const url = this.urlFor(app);
    const delivery: Delivery = {
      eventId,
      type,
      appId: app.appId,
      teamId: inst.teamId ?? inst.enterpriseId,
      url,
      body,
      state: url === null ? "no_url" : "pending",
      attempts: [],
    };
    this.deliveries.push(delivery);
    if (url === null) return;
    const run = this.#deliver(app, delivery, url).finally(() => this.#pending.delete(run));
    this.#pending.add(run);
  }

  async #deliver(app: AppRecord, delivery: Delivery, url: string): Promise<void> {
    const delays = this.#options.retryDelaysMs;
    let reason: string | null = null;
    for (let retryNum = 0; retryNum <= delays.length; retryNum++) {
      if (retryNum > 0) await sleep(delays[retryNum - 1] ?? 0);
      const attempt = await this.#post(app, url, delivery.body, retryNum, reason);
      delivery.attempts.push(attempt.record);
      if (attempt.record.status !== null && attempt.record.status >= 200 && attempt.record.status < 300) {
        delivery.state = "delivered";
        return;
      }
      if (attempt.noRetry || this.#closing.signal.aborted) break; // `x-slack-no-retry: 1` (§6.6)
      reason = attempt.reason;
    }
    delivery.state = "failed";
  }

  async #post(
    app: AppRecord,
    url: string,
    body: string,
    retryNum: number,
    retryReason: string | null,
  ): Promise<{ record: DeliveryAttempt; reason: string; noRetry: boolean; text: string }> {
    const timestamp = Math.floor(this.#options.clock.now() / 1000);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
      "x-slack-request-timestamp": String(timestamp),
      "x-slack-signature": signSlackRequest(app.signingSecret, timestamp, body),
    };
    if (retryNum > 0) {
      headers["x-slack-retry-num"] = String(retryNum);
      headers["x-slack-retry-reason"] = retryReason ?? "unknown_error";
    }
    const record: DeliveryAttempt = { retryNum, retryReason, status: null, error: null, timestamp };
    try {
      const res = await fetch(url, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.any([AbortSignal.timeout(this.#options.timeoutMs), this.#closing.signal]),
      });
      record.status = res.status;
      const text = await res.text();
      return { record, reason: "http_error", noRetry: res.headers.get("x-slack-no-retry") === "1", text };
    } catch (error) {
      const timedOut =
        error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
      record.error = error instanceof Error ? error.message : String(error);
      return { record, reason: timedOut ? "http_timeout" : "connection_failed", noRetry: false, text: "" };
    }
  }

  /**
   * Sends a signed `url_verification` (§6.5) and reports whether the challenge came back in any of the
   * three accepted forms (text, form `challenge=…`, JSON `{"challenge": …}`).
   */
  async verifyUrl(
    app: AppRecord,
    url: string,
  ): Promise<{ ok: boolean; status: number | null; challenge: string }> {
    const challenge = newHexSecret() + newHexSecret();
    const body = JSON.stringify({ token: app.verificationToken, challenge, type: "url_verification" });
    const attempt = await this.#post(app, url, body, 0, null);
    this.deliveries.push({
      eventId: "",
      type: "url_verification",
      appId: app.appId,
      teamId: null,
      url,
      body,
      state: attempt.record.status === 200 ? "delivered" : "failed",
      attempts: [attempt.record],
    });
    return {
      ok: attempt.record.status === 200 && echoes(attempt.text, challenge),
      status: attempt.record.status,
      challenge,
    };
  }

  /** Stops deliveries in flight (on close). */
  abortAll(): void {
    this.#closing.abort();
  }

  /** Resolves once every delivery started so far (and any they lead to) has finished. */
  async flush(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }
}

function echoes(text: string, challenge: string): boolean {
  if (text.trim() === challenge) return true;
  if (new URLSearchParams(text).get("challenge") === challenge) return true;
  try {
    return (JSON.parse(text) as { challenge?: unknown }).challenge === challenge;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}
