import { randomUUID } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { alertKindName, formatDuration, occurrenceOf } from "../domain/alert-rules.js";
import { NOTIFICATION_DEAD_LETTERED, subscriptionMatches } from "../domain/matching.js";
import type { AlertView, EventView } from "../events/event-context.js";
import { recordOccurrence } from "./alerts.js";
import type { StoredAlertRule, SubscriptionRecord } from "./subscription-record.js";
import { candidateSubscriptions } from "./subscriptions.js";

/**
 * Turns one consumed event into deliveries, inside the caller's transaction.
 *
 * Idempotent, so a redelivered message (crash before the ack) changes nothing: deliveries are
 * unique per (event, subscription) and alert occurrences per (subscription, key, occurrence),
 * and an occurrence already counted is not evaluated again. Subscriptions come in a fixed order,
 * so concurrent events take alert keys' row locks in the same order and cannot deadlock.
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

/**
 * Counts the event for an alert rule, if it concerns the rule, and returns the alert to deliver
 * when the rule fires for it (store/alerts.ts; when and why: domain/alert-firing.ts).
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
  const trip = await recordOccurrence(client, rule, {
    subscriptionId: sub.id,
    key: occ.key,
    occurrenceId: occ.occurrenceId,
    at,
    eventId: env.id,
  });
  if (trip === undefined) return undefined;
  return {
    kind: alertKindName(rule.kind),
    count: trip.count,
    threshold: rule.threshold,
    window: formatDuration(rule.windowMs),
    key: occ.key,
  };
}
