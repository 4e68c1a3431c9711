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
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { type Any, anyPack, anyUnpack, type Timestamp, timestampNow } from "@bufbuild/protobuf/wkt";
import { type Context, context, propagation } from "@opentelemetry/api";
import type pg from "pg";
import {
  type Actor,
  ActorSchema,
  type EventEnvelope,
  EventEnvelopeSchema,
  type TraceContext,
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
  // Built as the message itself rather than through create(): every service stages several
  // envelopes per request, and create()'s reflective walk was a measurable share of that cost.
  // The type checker holds this literal to the generated EventEnvelope shape.
  const trace: TraceContext = {
    $typeName: "codex.events.v1.TraceContext",
    traceparent: carrier.traceparent ?? "",
    tracestate: carrier.tracestate ?? "",
  };
  return {
    $typeName: "codex.events.v1.EventEnvelope",
    id: randomUUID(),
    type: init.schema.typeName,
    aggregateType: init.aggregateType,
    aggregateId: init.aggregateId,
    aggregateVersion: BigInt(init.aggregateVersion ?? 0),
    projectId: init.projectId ?? "",
    occurredAt: timestampNow(),
    actor: "$typeName" in init.actor ? (init.actor as Actor) : create(ActorSchema, init.actor),
    correlationId: init.correlationId ?? "",
    causationId: init.causationId ?? "",
    trace,
    payload: anyPack(init.schema, init.payload),
    source: init.source,
  };
}

/** Protobuf binary encoding: what travels in the outbox and on NATS. */
export function encodeEnvelope(envelope: EventEnvelope): Uint8Array {
  return hasUnknownFields(envelope) ? toBinary(EventEnvelopeSchema, envelope) : writeEnvelope(envelope);
}

// Strings as Buffer.from does them: about twice as fast as TextEncoder for the short ids here.
const utf8 = (text: string): Uint8Array => Buffer.from(text, "utf8");
const LEN = 2; // wire type of strings, bytes and messages
const VARINT = 0;

/**
 * The envelope written field by field, as toBinary writes it (field-number order, proto3 defaults
 * left out), without the reflective walk: encoding envelopes was the largest protobuf cost of
 * the event path. envelope.test.ts checks the bytes equal toBinary's across many envelopes.
 */
function writeEnvelope(e: EventEnvelope): Uint8Array {
  const w = new BinaryWriter(utf8);
  str(w, 1, e.id);
  str(w, 2, e.type);
  str(w, 3, e.aggregateType);
  str(w, 4, e.aggregateId);
  if (e.aggregateVersion !== 0n) w.tag(5, VARINT).uint64(e.aggregateVersion);
  str(w, 6, e.projectId);
  if (e.occurredAt) writeTimestamp(w.tag(7, LEN).fork(), e.occurredAt).join();
  if (e.actor) {
    w.tag(8, LEN).fork();
    if (e.actor.type !== 0) w.tag(1, VARINT).int32(e.actor.type);
    str(w, 2, e.actor.id);
    str(w, 3, e.actor.displayName);
    w.join();
  }
  str(w, 9, e.correlationId);
  str(w, 10, e.causationId);
  if (e.trace) {
    w.tag(11, LEN).fork();
    str(w, 1, e.trace.traceparent);
    str(w, 2, e.trace.tracestate);
    w.join();
  }
  if (e.payload) writeAny(w.tag(12, LEN).fork(), e.payload).join();
  str(w, 13, e.source);
  return w.finish();
}

function str(w: BinaryWriter, field: number, value: string): void {
  if (value !== "") w.tag(field, LEN).string(value);
}

function writeTimestamp(w: BinaryWriter, t: Timestamp): BinaryWriter {
  if (t.seconds !== 0n) w.tag(1, VARINT).int64(t.seconds);
  if (t.nanos !== 0) w.tag(2, VARINT).int32(t.nanos);
  return w;
}

function writeAny(w: BinaryWriter, a: Any): BinaryWriter {
  str(w, 1, a.typeUrl);
  if (a.value.length > 0) w.tag(2, LEN).bytes(a.value);
  return w;
}

/** Fields kept from a newer schema (on a decoded envelope): only toBinary writes those back. */
function hasUnknownFields(e: EventEnvelope): boolean {
  return (
    e.$unknown !== undefined ||
    e.occurredAt?.$unknown !== undefined ||
    e.actor?.$unknown !== undefined ||
    e.trace?.$unknown !== undefined ||
    e.payload?.$unknown !== undefined
  );
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
