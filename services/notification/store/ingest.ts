import { randomUUID } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { alertKindName, formatDuration, occurrenceOf, shouldFire } from "../domain/alert-rules.js";
import { NOTIFICATION_DEAD_LETTERED, subscriptionMatches } from "../domain/matching.js";
import type { AlertView, EventView } from "../events/event-context.js";
import type { StoredAlertRule, SubscriptionRecord } from "./subscription-record.js";
import { candidateSubscriptions } from "./subscriptions.js";

/**
 * Turns one consumed event into deliveries, inside the caller's transaction.
 *
 * Idempotent, so a redelivered message (crash before the ack) changes nothing: deliveries are
 * unique per (event, subscription) and alert occurrences per (subscription, key, occurrence),
 * and an occurrence already counted is not evaluated again.
 *
 * @returns the number of deliveries created.
 */
export async function ingestEvent(
  client: pg.ClientBase,
  view: EventView,
  envelopeBytes: Uint8Array,
): Promise<number> {
  const env = view.envelope;
  const subs = await candidateSubscriptions(client, env.projectId);
  const at = env.occurredAt ? timestampDate(env.occurredAt) : new Date();
  const deadLettered =
    env.type === NOTIFICATION_DEAD_LETTERED ? String(view.payload?.subscription_id ?? "") : undefined;
  let created = 0;
  for (const sub of subs) {
    if (sub.alertRule !== null) {
      const alert = await countAlert(client, sub, sub.alertRule, view, at);
      if (alert !== undefined && (await createDelivery(client, sub, view, alert))) created++;
    } else if (
      subscriptionMatches(sub, {
        type: env.type,
        projectId: env.projectId,
        deadLetteredSubscriptionId: deadLettered,
      })
    ) {
      if (await createDelivery(client, sub, view, undefined)) created++;
    }
  }
  if (created > 0) {
    await client.query("INSERT INTO events (id, envelope) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", [
      env.id,
      Buffer.from(envelopeBytes),
    ]);
  }
  return created;
}

/** Inserts the delivery and its first PENDING attempt, unless the pair exists already. */
async function createDelivery(
  client: pg.ClientBase,
  sub: SubscriptionRecord,
  view: EventView,
  alert: AlertView | undefined,
): Promise<boolean> {
  const env = view.envelope;
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO deliveries (id, event_id, subscription_id, event_type, project_id, alert, state)
     VALUES ($1, $2, $3, $4, $5, $6, 'pending')
     ON CONFLICT (event_id, subscription_id) DO NOTHING RETURNING id`,
    [randomUUID(), env.id, sub.id, env.type, env.projectId, alert ?? null],
  );
  const key = rows[0]?.id;
  if (key === undefined) return false;
  await client.query(
    `INSERT INTO delivery_attempts (id, delivery_key, subscription_id, event_id, event_type, project_id, attempt,
       outcome, next_attempt_time)
     VALUES ($1, $2, $3, $4, $5, $6, 1, 'pending', now())`,
    [randomUUID(), key, sub.id, env.id, env.type, env.projectId],
  );
  return true;
}

/** Longest alert window: occurrences older than this can never count again. */
const MAX_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Counts the event for an alert rule (if it concerns the rule) and reports whether the rule
 * trips now. The per-key state row is locked first, so replicas counting the same key at once
 * take turns and exactly one of them fires.
 */
async function countAlert(
  client: pg.ClientBase,
  sub: SubscriptionRecord,
  rule: StoredAlertRule,
  view: EventView,
  at: Date,
): Promise<AlertView | undefined> {
  const env = view.envelope;
  const occ = occurrenceOf(rule.kind, sub, {
    id: env.id,
    type: env.type,
    projectId: env.projectId,
    aggregateId: env.aggregateId,
    payload: view.payload,
  });
  if (occ === undefined) return undefined;
  await client.query(
    "INSERT INTO alert_state (subscription_id, key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    [sub.id, occ.key],
  );
  const state = await client.query<{ last_fired_at: Date | null }>(
    "SELECT last_fired_at FROM alert_state WHERE subscription_id = $1 AND key = $2 FOR UPDATE",
    [sub.id, occ.key],
  );
  const inserted = await client.query(
    `INSERT INTO alert_occurrences (subscription_id, key, occurrence_id, occurred_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING`,
    [sub.id, occ.key, occ.occurrenceId, at],
  );
  if (inserted.rowCount === 0) return undefined; // counted before (redelivery, or the same run reported twice)
  await client.query(
    "DELETE FROM alert_occurrences WHERE subscription_id = $1 AND key = $2 AND occurred_at < $3",
    [sub.id, occ.key, new Date(Date.now() - MAX_WINDOW_MS)],
  );
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM alert_occurrences
     WHERE subscription_id = $1 AND key = $2 AND occurred_at > $3 AND occurred_at <= $4`,
    [sub.id, occ.key, new Date(at.getTime() - rule.windowMs), at],
  );
  const count = rows[0]?.n ?? 0;
  const last = state.rows[0]?.last_fired_at ?? null;
  if (!shouldFire(rule, count, last?.getTime(), at.getTime())) return undefined;
  await client.query("UPDATE alert_state SET last_fired_at = $3 WHERE subscription_id = $1 AND key = $2", [
    sub.id,
    occ.key,
    at,
  ]);
  return {
    kind: alertKindName(rule.kind),
    count,
    threshold: rule.threshold,
    window: formatDuration(rule.windowMs),
    key: occ.key,
  };
}
