import type pg from "pg";
import { type AlertDecision, decideAlert, type Trip } from "../domain/alert-firing.js";
import type { AlertThresholds } from "../domain/alert-rules.js";

/**
 * The counting state of alert rules: occurrences per (subscription, key, occurrence id) and the
 * firings per (subscription, key), decided by domain/alert-firing.ts.
 */

/** Longest window: occurrences older than this before now are neither counted nor kept. */
export const OCCURRENCE_HORIZON_MS = 7 * 24 * 60 * 60 * 1000;
/** Firings are kept while they can still cover a trip: the horizon plus the longest cooldown. */
export const FIRING_HORIZON_MS = 2 * OCCURRENCE_HORIZON_MS;

/** One occurrence of what a rule counts. */
export interface AlertOccurrence {
  subscriptionId: string;
  key: string;
  /** Counted once per id (see domain/alert-rules.ts). */
  occurrenceId: string;
  /** Event time. */
  at: Date;
  /** The event being processed; names the firing's delivery. */
  eventId: string;
}

/**
 * Records an occurrence and decides, in the caller's transaction, whether the rule fires for it.
 *
 * Serialized per (subscription, key): the `alert_state` row is upserted first, which inserts or
 * locks it in one statement, so handlers and replicas counting the same key take turns, and each
 * sees every occurrence and firing the ones before it committed. An occurrence already recorded
 * (redelivery, re-publication, a run failure reported twice) decides nothing again.
 *
 * @returns the trip to announce, already stored as a firing; undefined when the rule stays silent.
 */
export async function recordOccurrence(
  client: pg.ClientBase,
  rule: AlertThresholds,
  o: AlertOccurrence,
  now: Date = new Date(),
): Promise<Trip | undefined> {
  const horizon = new Date(now.getTime() - OCCURRENCE_HORIZON_MS);
  if (o.at <= horizon) return undefined; // older than any window may reach back
  const key = [o.subscriptionId, o.key];
  await client.query(
    `INSERT INTO alert_state (subscription_id, key) VALUES ($1, $2)
     ON CONFLICT (subscription_id, key) DO UPDATE SET key = excluded.key`,
    key,
  );
  const inserted = await client.query(
    `INSERT INTO alert_occurrences (subscription_id, key, occurrence_id, occurred_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING`,
    [...key, o.occurrenceId, o.at],
  );
  if (inserted.rowCount === 0) return undefined;
  await client.query(
    "DELETE FROM alert_occurrences WHERE subscription_id = $1 AND key = $2 AND occurred_at <= $3",
    [...key, horizon],
  );
  const t = o.at.getTime();
  const occurrences = await client.query<{ at: Date }>(
    `SELECT occurred_at AS at FROM alert_occurrences
     WHERE subscription_id = $1 AND key = $2 AND occurred_at > $3 AND occurred_at < $4`,
    [...key, new Date(t - rule.windowMs), new Date(t + rule.windowMs)],
  );
  const firings = await client.query<{ at: Date }>(
    `SELECT fired_at AS at FROM alert_firings
     WHERE subscription_id = $1 AND key = $2 AND fired_at > $3 AND fired_at < $4`,
    [...key, new Date(t - rule.cooldownMs - 1), new Date(t + rule.windowMs + rule.cooldownMs + 1)],
  );
  const decision = decideAlert(
    rule,
    occurrences.rows.map((r) => r.at.getTime()),
    firings.rows.map((r) => r.at.getTime()),
    t,
  );
  await store(client, key, decision, o.eventId);
  return decision.fire;
}

async function store(client: pg.ClientBase, key: string[], d: AlertDecision, eventId: string): Promise<void> {
  for (const r of d.restamps) {
    await client.query(
      "UPDATE alert_firings SET fired_at = $4 WHERE subscription_id = $1 AND key = $2 AND fired_at = $3",
      [...key, new Date(r.fromMs), new Date(r.toMs)],
    );
  }
  if (d.fire === undefined) return;
  await client.query(
    "INSERT INTO alert_firings (subscription_id, key, fired_at, count, event_id) VALUES ($1, $2, $3, $4, $5)",
    [...key, new Date(d.fire.atMs), d.fire.count, eventId],
  );
}

/** A key's firings, oldest first (tests, diagnostics). */
export async function listFirings(
  db: pg.ClientBase | pg.Pool,
  subscriptionId: string,
  key: string,
): Promise<{ at: Date; count: number; eventId: string }[]> {
  const { rows } = await db.query<{ at: Date; count: number; event_id: string }>(
    `SELECT fired_at AS at, count, event_id FROM alert_firings
     WHERE subscription_id = $1 AND key = $2 ORDER BY fired_at`,
    [subscriptionId, key],
  );
  return rows.map((r) => ({ at: r.at, count: r.count, eventId: r.event_id }));
}
