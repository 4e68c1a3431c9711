/**
 * Who and what caused an event, and the one place envelopes are built, so every event of the
 * agent manager carries the same source, actor, correlation and aggregate version.
 */
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ActorType, type EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { newEnvelope } from "../../../mesh/events/envelope.js";

/** EventEnvelope.source of every event published here (agent_events.proto). */
export const EVENT_SOURCE = "agentmanager";
/** Actor of changes the manager makes on its own (lease expiry, offline detection). */
export const SELF_ACTOR_ID = "agent-manager";

export interface Origin {
  actorType: ActorType;
  actorId: string;
  displayName: string;
  correlationId: string;
}

const ACTOR_TYPES: Record<Principal["type"], ActorType> = {
  user: ActorType.USER,
  api_key: ActorType.API_KEY,
  agent: ActorType.AGENT,
  service: ActorType.SERVICE,
};

export function originOf(principal: Principal, correlationId: string): Origin {
  return {
    actorType: ACTOR_TYPES[principal.type],
    actorId: principal.id,
    displayName: principal.displayName ?? "",
    correlationId,
  };
}

export function agentOrigin(agentId: string, correlationId: string): Origin {
  return { actorType: ActorType.AGENT, actorId: agentId, displayName: "", correlationId };
}

export function selfOrigin(correlationId = ""): Origin {
  return { actorType: ActorType.SERVICE, actorId: SELF_ACTOR_ID, displayName: "", correlationId };
}

/** What an event is about. */
export interface Aggregate {
  type: "run" | "agent" | "info_request";
  id: string;
  version?: bigint | number;
  projectId?: string;
}

/** An envelope around a payload, occurring at `at` (the transaction's clock reading). */
export function envelope<D extends DescMessage>(
  schema: D,
  payload: MessageInitShape<D>,
  aggregate: Aggregate,
  origin: Origin,
  at: Date,
): EventEnvelope {
  const env = newEnvelope({
    schema,
    payload: create(schema, payload),
    aggregateType: aggregate.type,
    aggregateId: aggregate.id,
    ...(aggregate.version !== undefined ? { aggregateVersion: aggregate.version } : {}),
    ...(aggregate.projectId ? { projectId: aggregate.projectId } : {}),
    actor: { type: origin.actorType, id: origin.actorId, displayName: origin.displayName },
    correlationId: origin.correlationId,
    source: EVENT_SOURCE,
  });
  env.occurredAt = timestampFromDate(at);
  return env;
}
