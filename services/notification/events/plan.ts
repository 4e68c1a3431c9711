import type { JsonObject, Registry } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import { occurrenceOf } from "../domain/alert-rules.js";
import { NOTIFICATION_DEAD_LETTERED, subscriptionMatches } from "../domain/matching.js";
import type { SubscriptionIndex } from "../domain/subscription-index.js";
import type { PlannedEvent, PlannedOccurrence } from "../store/ingest.js";
import { payloadOf } from "./event-context.js";

/** A decoded message: the envelope and the bytes it came in. */
export interface ReceivedEvent {
  envelope: EventEnvelope;
  bytes: Uint8Array;
}

/**
 * What one event means for the subscriptions of `index`: the plain ones to deliver it to and the
 * alert occurrences to count. Undefined when it concerns none, which is decided from the event's
 * project and type alone (a memoized map lookup); the payload is converted to JSON only when an
 * alert rule counts the type, or for a dead letter some subscription may receive.
 */
export function planEvent(
  index: SubscriptionIndex,
  { envelope: env, bytes }: ReceivedEvent,
  registry: Registry,
): PlannedEvent | undefined {
  const { plain, alerts } = index.candidates(env.projectId, env.type);
  if (plain.length === 0 && alerts.length === 0) return undefined;
  let payload: JsonObject | undefined;
  let converted = false;
  const payloadJson = () => {
    if (!converted) {
      payload = payloadOf(env, registry);
      converted = true;
    }
    return payload;
  };
  const deadLettered =
    env.type === NOTIFICATION_DEAD_LETTERED && plain.length > 0
      ? String(payloadJson()?.subscription_id ?? "")
      : undefined;
  const event = { type: env.type, projectId: env.projectId, deadLetteredSubscriptionId: deadLettered };
  const deliverTo = plain.filter((sub) => subscriptionMatches(sub, event)).map((sub) => sub.id);
  const occurrences: PlannedOccurrence[] = [];
  for (const sub of alerts) {
    const rule = sub.alertRule;
    if (rule === null) continue;
    const occ = occurrenceOf(rule.kind, sub, {
      id: env.id,
      type: env.type,
      projectId: env.projectId,
      aggregateId: env.aggregateId,
      payload: payloadJson(),
    });
    if (occ !== undefined)
      occurrences.push({ subscriptionId: sub.id, subscriptionSeq: sub.seq, rule, ...occ });
  }
  if (deliverTo.length === 0 && occurrences.length === 0) return undefined;
  const at = env.occurredAt ? timestampDate(env.occurredAt) : new Date();
  return { envelope: env, bytes, at, deliverTo, occurrences };
}

/** {@link planEvent} for each event; only those concerning some subscription. */
export function planEvents(
  index: SubscriptionIndex,
  events: readonly ReceivedEvent[],
  registry: Registry,
): PlannedEvent[] {
  const out: PlannedEvent[] = [];
  for (const e of events) {
    const p = planEvent(index, e, registry);
    if (p !== undefined) out.push(p);
  }
  return out;
}
