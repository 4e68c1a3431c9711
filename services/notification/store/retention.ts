import type pg from "pg";
import { FIRING_HORIZON_MS, OCCURRENCE_HORIZON_MS } from "./alerts.js";

/** Rows removed by one sweep, per table. */
export type SweepResult = Record<
  "attempts" | "deadLetters" | "deliveries" | "events" | "subscriptions" | "other",
  number
>;

const CHUNK = 1_000;

async function chunked(pool: pg.Pool, sql: string, params: unknown[]): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await pool.query(sql, params);
    total += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < CHUNK) return total;
  }
}

/**
 * Deletes history older than `cutoff`, in small chunks so the sweep never holds long locks:
 * finished attempts, dead letters not being redelivered, finished deliveries no open dead letter
 * needs, envelopes no delivery needs (an open dead letter keeps its event redeliverable), deleted
 * subscriptions with no history left, and expired idempotency keys and alert counting state.
 * Pending work is never touched.
 */
export async function sweepHistory(pool: pg.Pool, cutoff: Date): Promise<SweepResult> {
  const attempts = await chunked(
    pool,
    `DELETE FROM delivery_attempts WHERE id IN (
       SELECT id FROM delivery_attempts WHERE attempt_time < $1 AND outcome <> 'pending' LIMIT ${CHUNK})`,
    [cutoff],
  );
  const deadLetters = await chunked(
    pool,
    `DELETE FROM dead_letters WHERE id IN (
       SELECT id FROM dead_letters WHERE dead_letter_time < $1 AND state <> 'redelivering' LIMIT ${CHUNK})`,
    [cutoff],
  );
  const deliveries = await chunked(
    pool,
    `DELETE FROM deliveries WHERE id IN (
       SELECT d.id FROM deliveries d
       WHERE d.update_time < $1 AND d.state IN ('succeeded', 'dead_lettered', 'cancelled')
         AND NOT EXISTS (SELECT 1 FROM dead_letters dl WHERE dl.delivery_key = d.id)
       LIMIT ${CHUNK})`,
    [cutoff],
  );
  const events = await chunked(
    pool,
    `DELETE FROM events WHERE id IN (
       SELECT e.id FROM events e WHERE e.received_at < $1
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT ${CHUNK})`,
    [cutoff],
  );
  const subscriptions = await chunked(
    pool,
    `DELETE FROM subscriptions WHERE id IN (
       SELECT s.id FROM subscriptions s WHERE s.delete_time < $1
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.subscription_id = s.id)
         AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.subscription_id = s.id)
         AND NOT EXISTS (SELECT 1 FROM dead_letters dl WHERE dl.subscription_id = s.id)
       LIMIT ${CHUNK})`,
    [cutoff],
  );
  const keys = await pool.query(
    "DELETE FROM idempotency_keys WHERE create_time < now() - interval '24 hours'",
  );
  const occ = await pool.query("DELETE FROM alert_occurrences WHERE occurred_at <= now() - $1::interval", [
    `${OCCURRENCE_HORIZON_MS} milliseconds`,
  ]);
  const fired = await pool.query("DELETE FROM alert_firings WHERE fired_at <= now() - $1::interval", [
    `${FIRING_HORIZON_MS} milliseconds`,
  ]);
  // Ingestion upserts the row it locks, so deleting an idle key's row races nothing.
  await pool.query(
    `DELETE FROM alert_state st
     WHERE NOT EXISTS (SELECT 1 FROM alert_occurrences o WHERE o.subscription_id = st.subscription_id AND o.key = st.key)
       AND NOT EXISTS (SELECT 1 FROM alert_firings f WHERE f.subscription_id = st.subscription_id AND f.key = st.key)`,
  );
  return {
    attempts,
    deadLetters,
    deliveries,
    events,
    subscriptions,
    other: (keys.rowCount ?? 0) + (occ.rowCount ?? 0) + (fired.rowCount ?? 0),
  };
}
