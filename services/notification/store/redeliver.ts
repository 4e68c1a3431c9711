import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { AttemptRow, DeadLetterRow } from "./history.js";

export type RedeliverResult =
  | { ok: true; deadLetter: DeadLetterRow; delivery: AttemptRow }
  | { ok: false; reason: "not_found" | "not_open" };

/**
 * Moves an OPEN dead letter to REDELIVERING and its delivery back to pending, as a new series
 * (the full retry policy again; attempt numbers continue). Run in a transaction; the caller has
 * checked the subscription is live and enabled.
 */
export async function redeliverDeadLetter(
  client: pg.ClientBase,
  subscriptionId: string,
  deadLetterId: string,
  by: string,
): Promise<RedeliverResult> {
  const found = await client.query<DeadLetterRow>(
    "SELECT * FROM dead_letters WHERE id = $1 AND subscription_id = $2 FOR UPDATE",
    [deadLetterId, subscriptionId],
  );
  const dl = found.rows[0];
  if (dl === undefined) return { ok: false, reason: "not_found" };
  if (dl.state !== "open") return { ok: false, reason: "not_open" };
  const updated = await client.query<DeadLetterRow>(
    `UPDATE dead_letters SET state = 'redelivering', redeliver_time = now(), redelivered_by = $2
     WHERE id = $1 RETURNING *`,
    [dl.id, by],
  );
  const d = await client.query<{ attempts: number }>(
    `UPDATE deliveries SET state = 'pending', series_start = attempts + 1, next_attempt_at = now(),
       claimed_until = NULL, claim_token = NULL, update_time = now()
     WHERE id = $1 AND state = 'dead_lettered' RETURNING attempts`,
    [dl.delivery_key],
  );
  const attempts = d.rows[0]?.attempts ?? dl.attempts;
  const attempt = await client.query<AttemptRow>(
    `INSERT INTO delivery_attempts (id, delivery_key, subscription_id, event_id, event_type, project_id, attempt,
       outcome, next_attempt_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', now())
     ON CONFLICT (delivery_key, attempt) DO UPDATE SET next_attempt_time = now()
     RETURNING *`,
    [
      randomUUID(),
      dl.delivery_key,
      dl.subscription_id,
      dl.event_id,
      dl.event_type,
      dl.project_id,
      attempts + 1,
    ],
  );
  return { ok: true, deadLetter: updated.rows[0]!, delivery: attempt.rows[0]! };
}
