import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type pg from "pg";
import { ActorType } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { newEnvelope, stageEvent } from "../../../mesh/events/envelope.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";

const ACTOR_TYPES: Record<Principal["type"], ActorType> = {
  user: ActorType.USER,
  api_key: ActorType.API_KEY,
  agent: ActorType.AGENT,
  service: ActorType.SERVICE,
};

/** One event the audit service publishes about uses of the trail (audit_events.proto). */
export interface AuditUseEvent<Desc extends DescMessage> {
  schema: Desc;
  payload: MessageShape<Desc>;
  aggregateType: "audit_chain" | "audit_export";
  aggregateId: string;
  projectId?: string;
}

/**
 * Publishes, through the outbox, events that make uses of the trail auditable and alertable
 * (verifications, broken chains, exports). They come back through the consumer and are
 * recorded in the trail like every other event, attributed to the caller.
 */
export async function publishAuditUse(
  pool: pg.Pool,
  subjects: Subjects,
  who: { principal: Principal; correlationId: string },
  events: AuditUseEvent<DescMessage>[],
): Promise<void> {
  await withTransaction(pool, async (client) => {
    for (const e of events) {
      const envelope = newEnvelope({
        schema: e.schema,
        payload: e.payload,
        aggregateType: e.aggregateType,
        aggregateId: e.aggregateId,
        projectId: e.projectId ?? "",
        actor: {
          type: ACTOR_TYPES[who.principal.type],
          id: who.principal.id,
          displayName: who.principal.displayName ?? "",
        },
        correlationId: who.correlationId,
        source: "audit",
      });
      await stageEvent(client, subjects, envelope);
    }
  });
}
