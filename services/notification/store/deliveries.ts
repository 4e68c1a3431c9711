import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { AlertView } from "../events/event-context.js";
import { recordFromRow, type SubscriptionRecord, type SubscriptionRow } from "./subscription-record.js";

type Db = pg.Pool | pg.ClientBase;

/** A delivery a worker owns until `claimedUntil`, with everything needed to send it. */
export interface ClaimedDelivery {
  id: string;
  claimToken: string;
  eventId: string;
  eventType: string;
  projectId: string;
  alert: AlertView | null;
  /** Attempts made so far (all series). */
  attempts: number;
  /** Attempt number that began the current series (1, or the first attempt of a redelivery). */
  seriesStart: number;
  subscription: SubscriptionRecord;
  envelope: Buffer;
}

interface DeliveryRow {
  id: string;
  claim_token: string;
  event_id: string;
  subscription_id: string;
  event_type: string;
  project_id: string;
  alert: AlertView | null;
  attempts: number;
  series_start: number;
}

/**
 * Claims up to `limit` due deliveries for `leaseMs`. `SKIP LOCKED` lets replicas claim side by
 * side without waiting on or double-taking each other's rows; the lease hands a delivery to
 * another worker if its owner dies mid-send. Deliveries of disabled or deleted subscriptions
 * are not claimed (deleted ones were cancelled; disabled ones resume when re-enabled).
 */
export async function claimDue(db: Db, limit: number, leaseMs: number): Promise<ClaimedDelivery[]> {
  const { rows } = await db.query<DeliveryRow>(
    `WITH due AS (
       SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
       WHERE d.state = 'pending' AND d.next_attempt_at <= now()
         AND (d.claimed_until IS NULL OR d.claimed_until < now())
         AND s.delete_time IS NULL AND s.enabled
       ORDER BY d.next_attempt_at
       LIMIT $1
       FOR UPDATE OF d SKIP LOCKED
     )
     UPDATE deliveries d SET claimed_until = now() + make_interval(secs => $2::double precision / 1000),
       claim_token = gen_random_uuid()
     FROM due WHERE d.id = due.id
     RETURNING d.id, d.claim_token, d.event_id, d.subscription_id, d.event_type, d.project_id, d.alert,
       d.attempts, d.series_start`,
    [limit, leaseMs],
  );
  if (rows.length === 0) return [];
  const subs = await db.query<SubscriptionRow>("SELECT * FROM subscriptions WHERE id = ANY($1::uuid[])", [
    [...new Set(rows.map((r) => r.subscription_id))],
  ]);
  const events = await db.query<{ id: string; envelope: Buffer }>(
    "SELECT id, envelope FROM events WHERE id = ANY($1::text[])",
    [[...new Set(rows.map((r) => r.event_id))]],
  );
  const subById = new Map(subs.rows.map((r) => [r.id, recordFromRow(r)]));
  const envById = new Map(events.rows.map((r) => [r.id, r.envelope]));
  const out: ClaimedDelivery[] = [];
  for (const r of rows) {
    const subscription = subById.get(r.subscription_id);
    const envelope = envById.get(r.event_id);
    if (subscription === undefined || envelope === undefined) continue; // retention removed it; lease lapses
    out.push({
      id: r.id,
      claimToken: r.claim_token,
      eventId: r.event_id,
      eventType: r.event_type,
      projectId: r.project_id,
      alert: r.alert,
      attempts: r.attempts,
      seriesStart: r.series_start,
      subscription,
      envelope,
    });
  }
  return out;
}

/** Gives a claim back without recording an attempt (shutdown before an answer arrived). */
export async function releaseClaim(db: Db, id: string, claimToken: string): Promise<void> {
  await db.query(
    "UPDATE deliveries SET claimed_until = NULL, claim_token = NULL WHERE id = $1 AND claim_token = $2",
    [id, claimToken],
  );
}

/** How an attempt ended, to record. */
export interface AttemptRecord {
  outcome: "succeeded" | "failed" | "dead_lettered";
  statusCode: number;
  latencyMs: number;
  error: string;
  /** For "failed": how long after this attempt the next one is due (from the database clock). */
  retryDelayMs?: number | undefined;
}

/** What recording changed, for the events the caller stages in the same transaction. */
export type RecordResult =
  | { recorded: false }
  | { recorded: true; attemptId: string; attempt: number; deadLetterId?: string | undefined };

/**
 * Records the attempt a worker made, fenced by its claim token: if the lease passed and another
 * worker claimed the delivery, nothing is written and the caller learns it. A delivery cancelled
 * while the request was in flight records that request and ends there.
 * Run inside a transaction together with the events staged for the result.
 */
export async function recordAttempt(
  client: pg.ClientBase,
  d: { id: string; claimToken: string },
  r: AttemptRecord,
): Promise<RecordResult> {
  const locked = await client.query<{
    attempts: number;
    subscription_id: string;
    event_id: string;
    event_type: string;
    project_id: string;
    state: string;
    now: Date;
  }>(
    `SELECT attempts, subscription_id, event_id, event_type, project_id, state, now() AS now FROM deliveries
     WHERE id = $1 AND claim_token = $2 AND state IN ('pending', 'cancelled') FOR UPDATE`,
    [d.id, d.claimToken],
  );
  const row = locked.rows[0];
  if (row === undefined) return { recorded: false };
  const attempt = row.attempts + 1;
  if (row.state === "cancelled") {
    // Cancelled (its subscription deleted) while this request was in flight: the request went
    // out, so it joins the history as it ended, and nothing follows it (no retry, no dead letter).
    const ended: AttemptRecord = r.outcome === "dead_lettered" ? { ...r, outcome: "failed" } : r;
    const attemptId = await upsertAttempt(client, d.id, row, attempt, ended, null);
    await client.query(
      `UPDATE deliveries SET state = $2, attempts = $3, claimed_until = NULL, claim_token = NULL,
         update_time = now() WHERE id = $1`,
      [d.id, r.outcome === "succeeded" ? "succeeded" : "cancelled", attempt],
    );
    return { recorded: true, attemptId, attempt };
  }
  // One clock: the attempt's time is the transaction's now(), so the next is exactly delay later.
  const nextAt = r.outcome === "failed" ? new Date(row.now.getTime() + (r.retryDelayMs ?? 0)) : null;
  const attemptId = await upsertAttempt(client, d.id, row, attempt, r, nextAt);
  const state = r.outcome === "failed" ? "pending" : r.outcome;
  await client.query(
    `UPDATE deliveries SET state = $2, attempts = $3, next_attempt_at = coalesce($4, next_attempt_at),
       claimed_until = NULL, claim_token = NULL, update_time = now()
     WHERE id = $1`,
    [d.id, state, attempt, nextAt],
  );
  if (r.outcome === "failed") {
    await client.query(
      `INSERT INTO delivery_attempts (id, delivery_key, subscription_id, event_id, event_type, project_id, attempt,
         outcome, next_attempt_time)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)`,
      [
        randomUUID(),
        d.id,
        row.subscription_id,
        row.event_id,
        row.event_type,
        row.project_id,
        attempt + 1,
        nextAt,
      ],
    );
    return { recorded: true, attemptId, attempt };
  }
  if (r.outcome === "succeeded") {
    await client.query(
      "UPDATE dead_letters SET state = 'resolved' WHERE delivery_key = $1 AND state = 'redelivering'",
      [d.id],
    );
    return { recorded: true, attemptId, attempt };
  }
  const dl = await client.query<{ id: string }>(
    `INSERT INTO dead_letters (id, delivery_key, subscription_id, event_id, event_type, project_id, attempts,
       last_status_code, last_error, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open')
     ON CONFLICT (delivery_key) DO UPDATE SET attempts = EXCLUDED.attempts,
       last_status_code = EXCLUDED.last_status_code, last_error = EXCLUDED.last_error, state = 'open',
       dead_letter_time = now()
     RETURNING id`,
    [
      randomUUID(),
      d.id,
      row.subscription_id,
      row.event_id,
      row.event_type,
      row.project_id,
      attempt,
      r.statusCode,
      r.error,
    ],
  );
  return { recorded: true, attemptId, attempt, deadLetterId: dl.rows[0]?.id };
}

/** Turns the PENDING attempt row into the made attempt (inserting it if it is missing). */
async function upsertAttempt(
  client: pg.ClientBase,
  key: string,
  row: { subscription_id: string; event_id: string; event_type: string; project_id: string },
  attempt: number,
  r: AttemptRecord,
  nextAt: Date | null,
): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO delivery_attempts (id, delivery_key, subscription_id, event_id, event_type, project_id, attempt,
       outcome, status_code, latency_ms, error, next_attempt_time, attempt_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
     ON CONFLICT (delivery_key, attempt) DO UPDATE SET outcome = EXCLUDED.outcome,
       status_code = EXCLUDED.status_code, latency_ms = EXCLUDED.latency_ms, error = EXCLUDED.error,
       next_attempt_time = EXCLUDED.next_attempt_time, attempt_time = now()
     RETURNING id`,
    [
      randomUUID(),
      key,
      row.subscription_id,
      row.event_id,
      row.event_type,
      row.project_id,
      attempt,
      r.outcome,
      r.statusCode,
      Math.round(r.latencyMs),
      r.error,
      nextAt,
    ],
  );
  return rows[0]!.id;
}
