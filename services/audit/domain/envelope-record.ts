import { create, type Registry } from "@bufbuild/protobuf";
import { type AuditRecord, AuditRecordSchema } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import { anyTypeName, payloadJson } from "./payload-json.js";
import { isValidTimestamp } from "./timestamps.js";

/** An envelope the trail cannot record faithfully; it can never succeed, so it is dead-lettered. */
export class InvalidEnvelopeError extends Error {
  override readonly name = "InvalidEnvelopeError";
}

/** `version-traceid-parentid-flags`; future versions may append fields, hence no `$`. */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}/;

/** The W3C trace id of a traceparent header, or "" when absent or invalid (all zeros). */
export function traceIdOf(traceparent: string | undefined): string {
  const id = TRACEPARENT.exec(traceparent?.trim().toLowerCase() ?? "")?.[1];
  return id === undefined || /^0+$/.test(id) ? "" : id;
}

/**
 * The part of an AuditRecord that comes from the event: everything except the position in the
 * chain (sequence, prev_hash, hash) and recorded_at, which the store assigns under its lock.
 */
export function draftFromEnvelope(env: EventEnvelope, registry: Registry): AuditRecord {
  if (env.id === "") throw new InvalidEnvelopeError("envelope has no id");
  if (env.occurredAt !== undefined && !isValidTimestamp(env.occurredAt)) {
    throw new InvalidEnvelopeError(`envelope ${env.id}: occurred_at out of range`);
  }
  const record = create(AuditRecordSchema, {
    eventId: env.id,
    eventType: env.type || anyTypeName(env.payload),
    aggregateType: env.aggregateType,
    aggregateId: env.aggregateId,
    aggregateVersion: env.aggregateVersion,
    projectId: env.projectId,
    correlationId: env.correlationId,
    causationId: env.causationId,
    payloadJson: payloadJson(env.payload, registry),
    source: env.source,
    traceId: traceIdOf(env.trace?.traceparent),
  });
  if (env.occurredAt !== undefined) record.occurredAt = env.occurredAt;
  if (env.actor !== undefined) record.actor = env.actor;
  assertStorable(record);
  return record;
}

/** PostgreSQL text cannot hold NUL; protobuf strings can. Refuse rather than alter the event. */
function assertStorable(r: AuditRecord): void {
  const texts = [r.eventId, r.eventType, r.aggregateType, r.aggregateId, r.projectId, r.correlationId];
  texts.push(r.causationId, r.source, r.actor?.id ?? "", r.actor?.displayName ?? "");
  if (texts.some((t) => t.includes("\u0000"))) {
    throw new InvalidEnvelopeError(`envelope ${r.eventId || "?"}: a text field contains a NUL character`);
  }
}
