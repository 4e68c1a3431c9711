import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { ActorType, type EventEnvelope } from "../../gen/codex/events/v1/envelope_pb.js";
import { currentContext, type Principal } from "../../mesh/context.js";
import { encodeEnvelope, newEnvelope, stageEvent } from "../../mesh/events/envelope.js";
import type { Subjects } from "../../mesh/nats/subjects.js";
import { enqueueOutbox } from "../../mesh/outbox/enqueue.js";

/** The aggregate types this service publishes about (subject token after `events.`). */
export type AggregateType = "work_item" | "approval_request" | "approval_policy" | "risk_rules" | "artifact";

export const SOURCE = "workitem";

/** One event to stage with the change it announces. */
export interface EventInit<Desc extends DescMessage> {
  schema: Desc;
  payload: MessageShape<Desc>;
  aggregateType: AggregateType;
  aggregateId: string;
  aggregateVersion: number;
  projectId: string;
  /** The change's time; becomes occurred_at so it equals the times inside the payload. */
  at: Date;
}

const ACTOR_TYPES: Record<Principal["type"], ActorType> = {
  user: ActorType.USER,
  api_key: ActorType.API_KEY,
  agent: ActorType.AGENT,
  service: ActorType.SERVICE,
};

/**
 * Stages this service's events and commands in the outbox, always with the client of the
 * transaction that makes the change: an event exists if and only if its change committed.
 */
export class Events {
  constructor(private readonly subjects: Subjects) {}

  /** Stages a domain event on `<prefix>.events.<aggregate_type>.<EventName>`. */
  async stage<Desc extends DescMessage>(
    db: pg.ClientBase,
    actor: Principal,
    e: EventInit<Desc>,
  ): Promise<void> {
    const envelope = envelopeOf(actor, e);
    await stageEvent(db, this.subjects, envelope);
  }

  /** Stages a command for another service on `<prefix>.commands.<service>.<Name>`. */
  async command<Desc extends DescMessage>(
    db: pg.ClientBase,
    actor: Principal,
    service: string,
    e: EventInit<Desc>,
  ): Promise<void> {
    const envelope = envelopeOf(actor, e);
    const name = e.schema.typeName.slice(e.schema.typeName.lastIndexOf(".") + 1);
    await enqueueOutbox(db, {
      id: envelope.id,
      subject: this.subjects.command(service, name),
      payload: encodeEnvelope(envelope),
      headers: { "Codex-Event-Type": envelope.type },
    });
  }
}

/** The principal the service acts as in background work (expiry sweeps). */
export const SYSTEM_ACTOR: Principal = { type: "service", id: SOURCE };

/** The envelope of an event or command: the acting principal, this request's correlation, `e.at`. */
function envelopeOf<Desc extends DescMessage>(actor: Principal, e: EventInit<Desc>): EventEnvelope {
  const ctx = currentContext();
  const envelope = newEnvelope({
    schema: e.schema,
    payload: e.payload,
    aggregateType: e.aggregateType,
    aggregateId: e.aggregateId,
    aggregateVersion: e.aggregateVersion,
    projectId: e.projectId,
    actor: { type: ACTOR_TYPES[actor.type], id: actor.id, displayName: actor.displayName ?? "" },
    source: SOURCE,
    ...(ctx ? { correlationId: ctx.correlationId } : {}),
  });
  envelope.occurredAt = timestampFromDate(e.at);
  return envelope;
}
