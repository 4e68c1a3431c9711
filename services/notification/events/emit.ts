import { create } from "@bufbuild/protobuf";
import type pg from "pg";
import { ActorType } from "../../../gen/codex/events/v1/envelope_pb.js";
import {
  NotificationDeadLetteredSchema,
  NotificationDeliveredSchema,
  SubscriptionCreatedSchema,
  SubscriptionDeletedSchema,
  SubscriptionUpdatedSchema,
} from "../../../gen/codex/events/v1/notification_events_pb.js";
import { AlertKind } from "../../../gen/codex/notification/v1/subscription_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { newEnvelope, stageEvent } from "../../../mesh/events/envelope.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { channelTarget, channelTypeOf, type SubscriptionRecord } from "../store/subscription-record.js";

/**
 * The events this service publishes, staged in the outbox inside the transaction of the change
 * they announce. Aggregate "subscription"; secrets never appear (only the non-secret target).
 */
const SOURCE = "notification";
const AGGREGATE = "subscription";

/** Who caused an event: the calling principal, or this service for the delivery worker's events. */
export interface EventOrigin {
  principal?: Principal | undefined;
  correlationId?: string | undefined;
  causationId?: string | undefined;
}

const ACTOR_TYPES = {
  user: ActorType.USER,
  api_key: ActorType.API_KEY,
  agent: ActorType.AGENT,
  service: ActorType.SERVICE,
} as const;

function actorOf(p: Principal | undefined) {
  if (p === undefined) return { type: ActorType.SERVICE, id: SOURCE, displayName: "" };
  return { type: ACTOR_TYPES[p.type], id: p.id, displayName: p.displayName ?? "" };
}

function common(sub: { id: string; projectId: string }, origin: EventOrigin) {
  return {
    aggregateType: AGGREGATE,
    aggregateId: sub.id,
    projectId: sub.projectId,
    actor: actorOf(origin.principal),
    ...(origin.correlationId ? { correlationId: origin.correlationId } : {}),
    ...(origin.causationId ? { causationId: origin.causationId } : {}),
    source: SOURCE,
  };
}

function described(s: SubscriptionRecord) {
  return {
    subscriptionId: s.id,
    projectId: s.projectId,
    displayName: s.displayName,
    eventTypes: s.eventTypes,
    channelType: channelTypeOf(s.channel),
    channelTarget: channelTarget(s.channel),
    alertKind: s.alertRule?.kind ?? AlertKind.UNSPECIFIED,
    enabled: s.enabled,
  };
}

/** Stages the events of subscription changes and delivery results on one transaction. */
export class EventStager {
  constructor(private readonly subjects: Subjects) {}

  created(c: pg.ClientBase, s: SubscriptionRecord, o: EventOrigin) {
    const payload = create(SubscriptionCreatedSchema, described(s));
    return this.#stage(
      c,
      newEnvelope({
        schema: SubscriptionCreatedSchema,
        payload,
        ...common(s, o),
        aggregateVersion: s.version,
      }),
    );
  }

  updated(c: pg.ClientBase, s: SubscriptionRecord, changedFields: string[], o: EventOrigin) {
    const payload = create(SubscriptionUpdatedSchema, { ...described(s), changedFields });
    return this.#stage(
      c,
      newEnvelope({
        schema: SubscriptionUpdatedSchema,
        payload,
        ...common(s, o),
        aggregateVersion: s.version,
      }),
    );
  }

  deleted(c: pg.ClientBase, s: SubscriptionRecord, cancelled: number, o: EventOrigin) {
    const payload = create(SubscriptionDeletedSchema, {
      subscriptionId: s.id,
      projectId: s.projectId,
      cancelledDeliveries: cancelled,
      deleted: true,
    });
    return this.#stage(c, newEnvelope({ schema: SubscriptionDeletedSchema, payload, ...common(s, o) }));
  }

  delivered(
    c: pg.ClientBase,
    sub: { id: string; projectId: string },
    d: {
      deliveryId: string;
      deliveryKey: string;
      eventId: string;
      eventType: string;
      attempt: number;
      statusCode: number;
      latencyMs: number;
    },
  ) {
    const payload = create(NotificationDeliveredSchema, {
      subscriptionId: sub.id,
      deliveryId: d.deliveryId,
      deliveryKey: d.deliveryKey,
      eventId: d.eventId,
      eventType: d.eventType,
      attempt: d.attempt,
      statusCode: d.statusCode,
      latencyMs: BigInt(Math.round(d.latencyMs)),
    });
    return this.#stage(
      c,
      newEnvelope({
        schema: NotificationDeliveredSchema,
        payload,
        ...common(sub, { causationId: d.eventId }),
      }),
    );
  }

  deadLettered(
    c: pg.ClientBase,
    sub: { id: string; projectId: string },
    d: {
      deadLetterId: string;
      deliveryKey: string;
      eventId: string;
      eventType: string;
      attempts: number;
      lastStatusCode: number;
      lastError: string;
    },
  ) {
    const payload = create(NotificationDeadLetteredSchema, {
      subscriptionId: sub.id,
      deadLetterId: d.deadLetterId,
      deliveryKey: d.deliveryKey,
      eventId: d.eventId,
      eventType: d.eventType,
      attempts: d.attempts,
      lastStatusCode: d.lastStatusCode,
      lastError: d.lastError,
    });
    return this.#stage(
      c,
      newEnvelope({
        schema: NotificationDeadLetteredSchema,
        payload,
        ...common(sub, { causationId: d.eventId }),
      }),
    );
  }

  #stage(c: pg.ClientBase, envelope: ReturnType<typeof newEnvelope>): Promise<bigint> {
    return stageEvent(c, this.subjects, envelope);
  }
}
