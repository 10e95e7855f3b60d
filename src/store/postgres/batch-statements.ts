// The refresher's two batch statements. They run on sessions that use generic plans (see
// PostgresStore's batch lane), so each is written to have one good plan whatever the table's size and
// whatever the parameters: test/integration/postgres-store.test.ts checks those plans on a large table.

/**
 * Claims up to $2 credentials of provider $5 due at time $1 for owner $3, with a lease of $4 ms judged
 * and taken at time $6 (ClaimDueOptions.leaseNowMs), returning the rows. Due rows come through the partial index on (provider, next_run_at_ms), most
 * overdue first, and only that provider's are read (migration 0007); rows other instances are
 * claiming right now are skipped, not waited for. The SET list is claimPatch() in SQL (claim,
 * journal opened, previous journal and run time kept for releaseClaim); it touches no indexed column,
 * so the row is rewritten in place (HOT, migration 0006). The rows are updated by the tuple ids the
 * locking scan found (they cannot move while locked): a TID scan, where a join back on the key could
 * become a hash join over the whole table in a generic plan that guesses LIMIT $2 at a tenth of it.
 */
export function claimDueSql(t: { credentials: string }): string {
  return `WITH due AS (
           SELECT ctid FROM ${t.credentials}
           WHERE provider = $5 AND next_run_at_ms <= $1 AND status <> 'needs_reauth'
             AND refresh_token_sealed IS NOT NULL AND (claim_until_ms IS NULL OR claim_until_ms <= $6)
           ORDER BY next_run_at_ms
           LIMIT $2
           FOR UPDATE SKIP LOCKED
         )
         UPDATE ${t.credentials} AS c
         SET claim_id = gen_random_uuid()::text, claim_owner = $3, claim_until_ms = $6::bigint + $4::bigint,
             claim_prev_in_doubt = c.refresh_in_doubt, claim_prev_run_at_ms = c.next_run_at_ms,
             refresh_in_doubt = true
         WHERE c.ctid = ANY(ARRAY(SELECT ctid FROM due))
         RETURNING c.*`;
}

/**
 * Completes a batch of refreshes whose credentials are `active` and whose claims still hold, in one
 * statement: the SET list is completionPatch() in SQL; the refreshed events and one notification
 * ($2 channel, $3 payload) commit with it. Returns the claim ids it completed. The input joins the
 * credentials on their primary key (a nested loop whatever the batch's size).
 */
export function completeRefreshesSql(t: { credentials: string; events: string }): string {
  return `WITH input AS (
           SELECT * FROM json_to_recordset($1::json) AS i(connection_id text, kind text, claim_id text,
             access text, refresh text, token_type text, scopes jsonb, expires_at_ms bigint, now_ms bigint,
             provider_data jsonb, due_ms bigint, event_type text, event_at_ms bigint, event_data jsonb)
         ), u AS (
           UPDATE ${t.credentials} AS c SET
             claim_id = NULL, claim_owner = NULL, claim_until_ms = NULL, claim_prev_in_doubt = NULL,
             claim_prev_run_at_ms = NULL, access_token_sealed = i.access,
             refresh_token_sealed = COALESCE(i.refresh, c.refresh_token_sealed), token_type = i.token_type,
             scopes = i.scopes, expires_at_ms = i.expires_at_ms, issued_at_ms = i.now_ms,
             refreshed_at_ms = i.now_ms, version = c.version + 1, status = 'active', reason = NULL,
             last_error = NULL, failure_count = 0, next_attempt_at_ms = NULL, refresh_in_doubt = false,
             provider_data = c.provider_data || i.provider_data, refresh_due_at_ms = i.due_ms,
             next_run_at_ms = i.due_ms
           FROM input i
           WHERE c.connection_id = i.connection_id AND c.kind = i.kind AND c.claim_id = i.claim_id
             AND c.status = 'active'
           RETURNING c.connection_id, c.kind, i.claim_id
         ), e AS (
           INSERT INTO ${t.events} (connection_id, kind, type, reason, at_ms, data)
           SELECT i.connection_id, i.kind, i.event_type, NULL, i.event_at_ms, i.event_data
           FROM input i JOIN u ON u.claim_id = i.claim_id
         ), n AS (
           -- One notification for the batch. It names every item: one this statement left out goes
           -- through #completeGeneral (announced there if it completes); an extra name costs a peer a read.
           SELECT pg_notify($2, $3) WHERE EXISTS (SELECT 1 FROM u)
         )
         SELECT u.claim_id FROM u, (SELECT count(*) FROM n) AS notified`;
}

const NEEDS_ESCAPE = /["\\]/;
const ESCAPED = /["\\]/g;

/**
 * A PostgreSQL array literal of text or numbers (`{"a","b",NULL,12}`), sent as one text parameter
 * and cast in SQL (`$1::text[]`), as the batched claim renewals send theirs. pg's own conversion
 * runs two regular-expression replaces per element and leaves a rope of concatenations to flatten.
 * Strings are always quoted (so the string "NULL" stays a string) and escaped only when they hold
 * a quote or a backslash.
 */
export function pgArrayLiteral(values: ReadonlyArray<string | number | null>): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts[i] = "NULL";
    else if (typeof v === "number") parts[i] = String(v);
    else if (NEEDS_ESCAPE.test(v)) parts[i] = `"${v.replace(ESCAPED, "\\$&")}"`;
    else parts[i] = `"${v}"`;
  }
  return `{${parts.join(",")}}`;
}
