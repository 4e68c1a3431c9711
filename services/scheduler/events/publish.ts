import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type pg from "pg";
import { ActorType } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { newEnvelope, stageEvent } from "../../../mesh/events/envelope.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";

/** Who caused what the scheduler is about to announce, and in answer to what. */
export interface Cause {
  principal: Principal;
  correlationId?: string | undefined;
  /** Id of the event or command being handled, when there is one. */
  causationId?: string | undefined;
}

const ACTOR_TYPES: Record<Principal["type"], ActorType> = {
  user: ActorType.USER,
  api_key: ActorType.API_KEY,
  agent: ActorType.AGENT,
  service: ActorType.SERVICE,
};

/** Stable actor id for records and events: user subject, key id, agent id, or "service:<name>". */
export function actorId(p: Principal): string {
  return p.type === "service" ? `service:${p.id}` : p.id;
}

/** The scheduler's own identity, for work it does on nobody's behalf (timers, recovery). */
export const SCHEDULER_PRINCIPAL: Principal = { type: "service", id: "scheduler" };

/**
 * Stages one scheduler event in the outbox of the caller's transaction, so it is published if
 * and only if the change it announces commits.
 */
export async function stage<D extends DescMessage>(
  tx: pg.ClientBase,
  subjects: Subjects,
  cause: Cause,
  e: {
    schema: D;
    payload: MessageShape<D>;
    aggregateType: "task" | "saga" | "work_item";
    aggregateId: string;
    projectId: string;
    version?: bigint;
  },
): Promise<void> {
  const envelope = newEnvelope({
    schema: e.schema,
    payload: e.payload,
    aggregateType: e.aggregateType,
    aggregateId: e.aggregateId,
    aggregateVersion: e.version ?? 0n,
    projectId: e.projectId,
    actor: {
      type: ACTOR_TYPES[cause.principal.type],
      id: cause.principal.id,
      displayName: cause.principal.displayName ?? "",
    },
    ...(cause.correlationId ? { correlationId: cause.correlationId } : {}),
    ...(cause.causationId ? { causationId: cause.causationId } : {}),
    source: "scheduler",
  });
  await stageEvent(tx, subjects, envelope);
}
