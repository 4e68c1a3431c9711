import { randomUUID } from "node:crypto";
import {
  create,
  type DescMessage,
  fromBinary,
  type Message,
  type MessageInitShape,
  type MessageShape,
  type Registry,
  toBinary,
} from "@bufbuild/protobuf";
import { anyPack, anyUnpack, timestampNow } from "@bufbuild/protobuf/wkt";
import { type Context, context, propagation } from "@opentelemetry/api";
import type pg from "pg";
import {
  type ActorSchema,
  type EventEnvelope,
  EventEnvelopeSchema,
  TraceContextSchema,
} from "../../gen/codex/events/v1/envelope_pb.js";
import type { Subjects } from "../nats/subjects.js";
import { enqueueOutbox } from "../outbox/enqueue.js";

/** What a producer knows about an event; ids, time, type and trace are filled in. */
export interface NewEnvelopeInit<Desc extends DescMessage> {
  /** Generated schema of the payload, e.g. `ProjectCreatedSchema`. */
  schema: Desc;
  payload: MessageShape<Desc>;
  /** Kind of aggregate, e.g. "project"; becomes a subject token, so letters, digits, `_`, `-`. */
  aggregateType: string;
  aggregateId: string;
  /** Version of the aggregate after this event; lets consumers spot gaps and reordering. */
  aggregateVersion?: bigint | number;
  projectId?: string;
  actor: MessageInitShape<typeof ActorSchema>;
  /** The request id shared by everything one user request caused. */
  correlationId?: string;
  /** Id of the event or command that caused this one. */
  causationId?: string;
  /** Producing service, e.g. "project". */
  source: string;
}

/** NATS headers set on every staged event, so consumers can route and trace without decoding. */
export const EnvelopeHeaders = {
  eventType: "Codex-Event-Type",
  correlationId: "Codex-Correlation-Id",
  traceparent: "traceparent",
  tracestate: "tracestate",
} as const;

/**
 * Builds an {@link EventEnvelope} around a typed payload.
 *
 * Why: every event must carry the same metadata (unique id for idempotency and dedupe, time of
 * the change, aggregate and version for ordering, actor and correlation for the audit trail,
 * W3C trace context so a consumer's span joins the producer's trace). Filling it in one place
 * makes forgetting one impossible. The trace is taken from the active OpenTelemetry context;
 * it stays empty when no propagator is registered (e.g. tracing disabled).
 */
export function newEnvelope<Desc extends DescMessage>(init: NewEnvelopeInit<Desc>): EventEnvelope {
  if (init.aggregateId === "") throw new Error(`${init.schema.typeName}: aggregateId must not be empty`);
  if (init.source === "") throw new Error(`${init.schema.typeName}: source must not be empty`);
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return create(EventEnvelopeSchema, {
    id: randomUUID(),
    type: init.schema.typeName,
    aggregateType: init.aggregateType,
    aggregateId: init.aggregateId,
    aggregateVersion: BigInt(init.aggregateVersion ?? 0),
    projectId: init.projectId ?? "",
    occurredAt: timestampNow(),
    actor: init.actor,
    correlationId: init.correlationId ?? "",
    causationId: init.causationId ?? "",
    trace: create(TraceContextSchema, {
      traceparent: carrier.traceparent ?? "",
      tracestate: carrier.tracestate ?? "",
    }),
    payload: anyPack(init.schema, init.payload),
    source: init.source,
  });
}

/** Protobuf binary encoding: what travels in the outbox and on NATS. */
export function encodeEnvelope(envelope: EventEnvelope): Uint8Array {
  return toBinary(EventEnvelopeSchema, envelope);
}

/** Inverse of {@link encodeEnvelope}; throws on bytes that are not an envelope. */
export function decodeEnvelope(bytes: Uint8Array): EventEnvelope {
  return fromBinary(EventEnvelopeSchema, bytes);
}

/**
 * The envelope's payload as a typed message. With a schema: `undefined` when the payload is of
 * another type (so a consumer can skip events it does not handle). With a registry: `undefined`
 * when the type is not in it (e.g. an event newer than this consumer).
 */
export function unpackPayload<Desc extends DescMessage>(
  envelope: EventEnvelope,
  schema: Desc,
): MessageShape<Desc> | undefined;
export function unpackPayload(envelope: EventEnvelope, registry: Registry): Message | undefined;
export function unpackPayload(envelope: EventEnvelope, from: Registry | DescMessage): Message | undefined {
  if (envelope.payload === undefined) return undefined;
  return "kind" in from && from.kind === "message"
    ? anyUnpack(envelope.payload, from)
    : anyUnpack(envelope.payload, from as Registry);
}

/**
 * An OpenTelemetry context carrying the producer's trace, for a consumer to start its span in,
 * so that one trace follows a request across the event bus.
 */
export function contextFromEnvelope(envelope: EventEnvelope, base: Context = context.active()): Context {
  const carrier: Record<string, string> = {};
  if (envelope.trace?.traceparent) carrier.traceparent = envelope.trace.traceparent;
  if (envelope.trace?.tracestate) carrier.tracestate = envelope.trace.tracestate;
  return propagation.extract(base, carrier);
}

/** "codex.events.v1.ProjectCreated" → "ProjectCreated". */
function shortTypeName(typeName: string): string {
  return typeName.slice(typeName.lastIndexOf(".") + 1);
}

/**
 * Puts an envelope in the outbox, inside the caller's transaction, on subject
 * `<prefix>.events.<aggregateType>.<eventName>` (event name defaults to the payload's short type
 * name). The envelope id becomes the JetStream message id, so relaying is exactly-once.
 *
 * Why this is the only way services should publish domain events: staging in the same
 * transaction as the state change is what guarantees "event if and only if the change committed".
 */
export async function stageEvent(
  client: pg.ClientBase,
  subjects: Subjects,
  envelope: EventEnvelope,
  eventName?: string,
): Promise<bigint> {
  const subject = subjects.event(envelope.aggregateType, eventName ?? shortTypeName(envelope.type));
  const headers: Record<string, string> = { [EnvelopeHeaders.eventType]: envelope.type };
  if (envelope.correlationId !== "") headers[EnvelopeHeaders.correlationId] = envelope.correlationId;
  if (envelope.trace?.traceparent) headers[EnvelopeHeaders.traceparent] = envelope.trace.traceparent;
  if (envelope.trace?.tracestate) headers[EnvelopeHeaders.tracestate] = envelope.trace.tracestate;
  return enqueueOutbox(client, { id: envelope.id, subject, payload: encodeEnvelope(envelope), headers });
}
