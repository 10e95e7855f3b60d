import type { FastifyInstance } from "fastify";
import { TokenwardenError } from "../../core/errors.js";
import { verifySlackSignature } from "../../providers/slack/slack-signature.js";
import { HttpError } from "../error-reply.js";
import { route, type ServerContext } from "../server-context.js";
import { actsOn, applySlackEvent, type EventOutcome, type SlackEnvelope } from "../slack-events.js";

/** Slack retries for up to ~6 minutes (or a day with Delayed Events, §6.6): remember event ids for a day. */
const SEEN_TTL_MS = 24 * 3_600_000;
const BODY_LIMIT = 256 * 1024;

/** How long one delivery may take to act on an event before another delivery may try. */
const IN_FLIGHT_MS = 60_000;

/**
 * Acts on an event at most once per `event_id` across every process; null when it was acted on before.
 * Two marks: `slack_event_in_flight` while a delivery works on it, `slack_event` once it is done.
 * Each is removed or extended only by the delivery that set it (fenced on the expiry it set).
 * Slack sends a retry 3 s into a slow first delivery (§6.6): that retry is refused (409, so Slack
 * retries again in a minute) rather than acknowledged, or a first delivery failing after it would
 * lose the event. Both marks are taken with the same short expiry and the done mark is lengthened
 * only after success, so a process dying mid-way leaves nothing that hides the event from the
 * retry after.
 */
async function actOnce(
  ctx: ServerContext,
  envelope: SlackEnvelope,
  eventId: string,
): Promise<EventOutcome | null> {
  const now = ctx.clock.now();
  const until = now + IN_FLIGHT_MS;
  if (!(await ctx.store.markOnce("slack_event_in_flight", eventId, now, until))) {
    throw new HttpError("conflict", "this event is being handled by an earlier delivery; retry later");
  }
  // A done mark this delivery set and could not take back again: the in-flight mark must then stay
  // until both lapse, or the next retry would take the event for done and acknowledge it unacted.
  let stuck = false;
  // Not acted on: forget the id so Slack's retry gets another chance (our mark only).
  const forget = () =>
    ctx.store.unmarkOnce("slack_event", eventId, until).catch(() => {
      stuck = true;
    });
  try {
    let marked: boolean;
    try {
      marked = await ctx.store.markOnce("slack_event", eventId, now, until);
    } catch (error) {
      // A write whose answer was lost (the connection dropped after COMMIT) may have set the mark.
      await forget();
      throw error;
    }
    if (!marked) return null;
    let outcome: EventOutcome;
    try {
      outcome = await applySlackEvent(ctx, envelope);
    } catch (error) {
      await forget();
      throw error;
    }
    // Acted on: remembered for a day, in one write (a failure here leaves the short mark).
    await ctx.store.extendMark("slack_event", eventId, until, now + SEEN_TTL_MS);
    return outcome;
  } finally {
    // Ours only: a delivery that outlived its in-flight mark must not remove a newer delivery's.
    if (!stuck) await ctx.store.unmarkOnce("slack_event_in_flight", eventId, until).catch(() => {});
  }
}

/**
 * `POST /slack/events`: the body is kept raw (the signature covers its exact
 * bytes, §6.4), verified with a 5-minute window in constant time, then acted on
 * once per `event_id` across every process.
 */
export function registerSlackEventRoutes(app: FastifyInstance, ctx: ServerContext): void {
  void app.register(async (scoped) => {
    scoped.removeAllContentTypeParsers();
    scoped.addContentTypeParser("*", { parseAs: "string", bodyLimit: BODY_LIMIT }, (_req, body, done) => {
      done(null, body);
    });
    route(
      scoped,
      ctx,
      {
        method: "POST",
        url: "/slack/events",
        tag: "slack",
        summary:
          "Signed Slack events: url_verification, app_uninstalled, tokens_revoked (idempotent on retries)",
        auth: false,
      },
      async (request, reply) => {
        const signingSecret = ctx.slack?.signingSecret ?? null;
        if (signingSecret === null) {
          throw new TokenwardenError(
            "provider_misconfigured",
            "SLACK_SIGNING_SECRET is not set: events are off",
          );
        }
        const raw = typeof request.body === "string" ? request.body : "";
        const verdict = verifySlackSignature({
          signingSecret,
          rawBody: raw,
          nowMs: ctx.hostClock.now(), // Slack dates its requests by its own clock, real time
          timestampHeader: request.headers["x-slack-request-timestamp"],
          signatureHeader: request.headers["x-slack-signature"],
        });
        if (!verdict.ok)
          throw new TokenwardenError("unauthorized", `Slack signature refused (${verdict.reason})`);
        let envelope: SlackEnvelope;
        try {
          const parsed: unknown = JSON.parse(raw);
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new SyntaxError();
          envelope = parsed as SlackEnvelope;
        } catch {
          throw new HttpError("invalid_input", "the body is not a JSON object");
        }
        if (envelope.type === "url_verification") {
          const challenge = (envelope as { challenge?: unknown }).challenge;
          if (typeof challenge !== "string")
            throw new HttpError("invalid_input", "url_verification without challenge");
          return { challenge };
        }
        if (envelope.type !== "event_callback") return { ok: true };
        if (
          typeof envelope.event_id !== "string" ||
          envelope.event_id.length === 0 ||
          envelope.event_id.length > 200
        ) {
          throw new HttpError("invalid_input", "event_callback without a valid event_id");
        }
        if (!actsOn(envelope)) return { ok: true };
        const outcome = await actOnce(ctx, envelope, envelope.event_id);
        if (outcome !== null) request.log.info({ eventId: envelope.event_id, outcome }, "slack event");
        return reply.send({ ok: true });
      },
    );
  });
}
