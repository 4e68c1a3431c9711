import type pg from "pg";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import { alertKindName, formatDuration } from "../domain/alert-rules.js";
import type { AlertView } from "../events/event-context.js";
import { recordOccurrence } from "./alerts.js";
import type { StoredAlertRule } from "./subscription-record.js";

/** An event occurrence an alert rule counts (domain/alert-rules.ts decided the key). */
export interface PlannedOccurrence {
  subscriptionId: string;
  /** Subscription order: alert keys are locked in (seq, key) order. */
  subscriptionSeq: bigint;
  rule: StoredAlertRule;
  key: string;
  occurrenceId: string;
}

/** One consumed event and what it means for the subscriptions, decided from the in-memory index. */
export interface PlannedEvent {
  envelope: EventEnvelope;
  /** The envelope as received, stored for rendering at send time. */
  bytes: Uint8Array;
  /** Event time. */
  at: Date;
  /** Plain subscriptions the event is delivered to. */
  deliverTo: string[];
  occurrences: PlannedOccurrence[];
}

interface NewDelivery {
  event: PlannedEvent;
  subscriptionId: string;
  alert: AlertView | undefined;
}

/**
 * Turns planned events into deliveries, inside the caller's (one) transaction.
 *
 * Idempotent, so a redelivered message (crash before the ack) or a batch retried message by
 * message changes nothing: deliveries are unique per (event, subscription) and alert occurrences
 * per (subscription, key, occurrence), and an occurrence already counted is not evaluated again.
 * Alert keys are locked in (subscription seq, key) order and deliveries inserted in (event,
 * subscription) order, whatever the batch, so concurrent batches cannot deadlock each other.
 *
 * @returns the number of deliveries created.
 */
export async function ingestEvents(client: pg.ClientBase, events: readonly PlannedEvent[]): Promise<number> {
  const deliveries: NewDelivery[] = [];
  for (const event of events) {
    for (const subscriptionId of event.deliverTo)
      deliveries.push({ event, subscriptionId, alert: undefined });
  }
  const counted = events.flatMap((event) => event.occurrences.map((occ) => ({ event, occ })));
  counted.sort((a, b) =>
    a.occ.subscriptionSeq !== b.occ.subscriptionSeq
      ? a.occ.subscriptionSeq < b.occ.subscriptionSeq
        ? -1
        : 1
      : a.occ.key < b.occ.key
        ? -1
        : a.occ.key > b.occ.key
          ? 1
          : 0,
  );
  for (const { event, occ } of counted) {
    const alert = await countAlert(client, event, occ);
    if (alert !== undefined) deliveries.push({ event, subscriptionId: occ.subscriptionId, alert });
  }
  return deliveries.length === 0 ? 0 : insertDeliveries(client, deliveries);
}

/**
 * Inserts deliveries with their first PENDING attempt, skipping (event, subscription) pairs that
 * exist already, and stores the envelope of each event that got one: one statement.
 */
async function insertDeliveries(client: pg.ClientBase, ds: NewDelivery[]): Promise<number> {
  const envelopes = new Map<string, Uint8Array>();
  for (const d of ds) envelopes.set(d.event.envelope.id, d.event.bytes);
  const { rows } = await client.query<{ n: number }>(
    `WITH input AS (
       SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[])
         AS t(event_id, subscription_id, event_type, project_id, alert)
     ), ins AS (
       INSERT INTO deliveries (id, event_id, subscription_id, event_type, project_id, alert, state)
       SELECT gen_random_uuid(), event_id, subscription_id, event_type, project_id, alert::jsonb, 'pending'
       FROM input ORDER BY event_id, subscription_id
       ON CONFLICT (event_id, subscription_id) DO NOTHING
       RETURNING id, event_id, subscription_id, event_type, project_id
     ), attempts AS (
       INSERT INTO delivery_attempts (id, delivery_key, subscription_id, event_id, event_type, project_id,
         attempt, outcome, next_attempt_time)
       SELECT gen_random_uuid(), id, subscription_id, event_id, event_type, project_id, 1, 'pending', now()
       FROM ins
     ), stored AS (
       INSERT INTO events (id, envelope)
       SELECT e.id, e.envelope FROM unnest($6::text[], $7::bytea[]) AS e(id, envelope)
       WHERE e.id IN (SELECT event_id FROM ins)
       ORDER BY e.id
       ON CONFLICT (id) DO NOTHING
     )
     SELECT count(*)::int AS n FROM ins`,
    [
      ds.map((d) => d.event.envelope.id),
      ds.map((d) => d.subscriptionId),
      ds.map((d) => d.event.envelope.type),
      ds.map((d) => d.event.envelope.projectId),
      ds.map((d) => (d.alert === undefined ? null : JSON.stringify(d.alert))),
      [...envelopes.keys()],
      [...envelopes.values()].map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
    ],
  );
  return rows[0]?.n ?? 0;
}

/**
 * Counts the occurrence and returns the alert to deliver when the rule fires for it
 * (store/alerts.ts; when and why: domain/alert-firing.ts).
 */
async function countAlert(
  client: pg.ClientBase,
  event: PlannedEvent,
  occ: PlannedOccurrence,
): Promise<AlertView | undefined> {
  const trip = await recordOccurrence(client, occ.rule, {
    subscriptionId: occ.subscriptionId,
    key: occ.key,
    occurrenceId: occ.occurrenceId,
    at: event.at,
    eventId: event.envelope.id,
  });
  if (trip === undefined) return undefined;
  return {
    kind: alertKindName(occ.rule.kind),
    count: trip.count,
    threshold: occ.rule.threshold,
    window: formatDuration(occ.rule.windowMs),
    key: occ.key,
  };
}
