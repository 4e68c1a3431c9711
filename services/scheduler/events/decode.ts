import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { ActorType, type EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { decodeEnvelope, unpackPayload } from "../../../mesh/events/envelope.js";
import { type ConsumedMessage, PermanentError } from "../../../mesh/nats/consumer.js";
import type { Cause } from "./publish.js";

/** Decodes a consumed envelope and its typed payload; undecodable messages go to the DLQ at once. */
export function decode<D extends DescMessage>(
  msg: ConsumedMessage,
  schema: D,
): [EventEnvelope, MessageShape<D>] {
  try {
    const env = decodeEnvelope(msg.data);
    const payload = unpackPayload(env, schema);
    if (!payload) throw new Error(`payload is ${env.payload?.typeUrl}, expected ${schema.typeName}`);
    return [env, payload];
  } catch (err) {
    throw new PermanentError(`undecodable ${schema.typeName}: ${String(err)}`);
  }
}

const PRINCIPAL_TYPES: Partial<Record<ActorType, Principal["type"]>> = {
  [ActorType.USER]: "user",
  [ActorType.API_KEY]: "api_key",
  [ActorType.AGENT]: "agent",
};

/** The cause of what handling an event changes: its actor, correlation, and the event itself. */
export function causeOf(env: EventEnvelope): Cause {
  const type = PRINCIPAL_TYPES[env.actor?.type ?? ActorType.UNSPECIFIED] ?? "service";
  return {
    principal: { type, id: env.actor?.id || env.source || "unknown" },
    correlationId: env.correlationId,
    causationId: env.id,
  };
}
