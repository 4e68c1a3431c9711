/**
 * Stages a project event in the outbox on the transaction's client, through the mesh's
 * one envelope builder; the relay run by the service host publishes it to
 * `<prefix>.events.<aggregate_type>.<EventName>` with the envelope id as Nats-Msg-Id.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { ActorType } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { newEnvelope, stageEvent } from "../../../mesh/events/envelope.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import type { ProjectEvent } from "../events.js";

const ACTOR_TYPES: Record<Principal["type"], ActorType> = {
  user: ActorType.USER,
  api_key: ActorType.API_KEY,
  agent: ActorType.AGENT,
  service: ActorType.SERVICE,
};

/** Who and what caused the events of one transaction. */
export interface EventOrigin {
  principal: Principal;
  ctx: CallContext;
  /** The transaction's clock reading, so occurred_at equals the times stored with the change. */
  occurredAt: Date;
}

export async function stageProjectEvent(
  client: pg.PoolClient,
  subjects: Subjects,
  origin: EventOrigin,
  event: ProjectEvent,
): Promise<void> {
  const envelope = newEnvelope({
    schema: event.schema,
    payload: event.payload,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    aggregateVersion: event.aggregateVersion,
    projectId: event.projectId,
    actor: {
      type: ACTOR_TYPES[origin.principal.type],
      id: origin.principal.id,
      displayName: origin.principal.displayName ?? "",
    },
    correlationId: origin.ctx.correlationId,
    source: "project",
  });
  envelope.occurredAt = timestampFromDate(origin.occurredAt);
  await stageEvent(client, subjects, envelope);
}
