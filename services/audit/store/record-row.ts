import { create } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { type AuditRecord, AuditRecordSchema } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { ActorSchema } from "../../../gen/codex/events/v1/envelope_pb.js";
import { fromPgParts, toPgTimestamp } from "../domain/timestamps.js";

/**
 * Columns selected for a record. Timestamps come back as exact epoch microseconds (numeric
 * arithmetic, no time zone involved) rather than pg's millisecond Date.
 */
export const RECORD_COLUMNS = `sequence, event_id, event_type, aggregate_type, aggregate_id,
  aggregate_version::text AS aggregate_version, project_id, actor_type, actor_id, actor_display_name,
  correlation_id, causation_id,
  (extract(epoch FROM occurred_at) * 1000000)::bigint AS occurred_us, occurred_at_subus,
  (extract(epoch FROM recorded_at) * 1000000)::bigint AS recorded_us, recorded_at_subus,
  payload_json, prev_hash, hash, source, trace_id`;

/** A row as selected with {@link RECORD_COLUMNS} (int8 arrives as bigint from our pool). */
export interface RecordRow {
  sequence: bigint;
  event_id: string;
  event_type: string;
  aggregate_type: string;
  aggregate_id: string;
  aggregate_version: string;
  project_id: string;
  actor_type: number | null;
  actor_id: string;
  actor_display_name: string;
  correlation_id: string;
  causation_id: string;
  occurred_us: bigint | null;
  occurred_at_subus: number | null;
  recorded_us: bigint;
  recorded_at_subus: number;
  payload_json: string;
  prev_hash: string;
  hash: string;
  source: string;
  trace_id: string;
}

function timestampOf(epochMicros: bigint, subMicroNanos: number): Timestamp {
  let seconds = epochMicros / 1_000_000n;
  let micros = epochMicros % 1_000_000n;
  if (micros < 0n) {
    seconds -= 1n;
    micros += 1_000_000n;
  }
  return fromPgParts(seconds, Number(micros), subMicroNanos);
}

/** Rebuilds the AuditRecord a row stores, exactly as it was hashed. */
export function recordFromRow(row: RecordRow): AuditRecord {
  const record = create(AuditRecordSchema, {
    sequence: BigInt(row.sequence),
    eventId: row.event_id,
    eventType: row.event_type,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    aggregateVersion: BigInt(row.aggregate_version),
    projectId: row.project_id,
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    recordedAt: timestampOf(BigInt(row.recorded_us), row.recorded_at_subus),
    payloadJson: row.payload_json,
    prevHash: row.prev_hash,
    hash: row.hash,
    source: row.source,
    traceId: row.trace_id,
  });
  if (row.actor_type !== null) {
    record.actor = create(ActorSchema, {
      type: row.actor_type,
      id: row.actor_id,
      displayName: row.actor_display_name,
    });
  }
  if (row.occurred_us !== null)
    record.occurredAt = timestampOf(BigInt(row.occurred_us), row.occurred_at_subus ?? 0);
  return record;
}

/** Insert parameters for a complete record, in the order of {@link INSERT_SQL}. */
export function rowParams(r: AuditRecord): unknown[] {
  const occurred = r.occurredAt === undefined ? undefined : toPgTimestamp(r.occurredAt);
  if (r.recordedAt === undefined) throw new Error(`record ${r.sequence} has no recorded_at`);
  const recorded = toPgTimestamp(r.recordedAt);
  return [
    r.sequence.toString(),
    r.eventId,
    r.eventType,
    r.aggregateType,
    r.aggregateId,
    r.aggregateVersion.toString(),
    r.projectId,
    r.actor === undefined ? null : r.actor.type,
    r.actor?.id ?? "",
    r.actor?.displayName ?? "",
    r.correlationId,
    r.causationId,
    occurred?.text ?? null,
    occurred?.subMicroNanos ?? null,
    recorded.text,
    recorded.subMicroNanos,
    r.payloadJson,
    r.prevHash,
    r.hash,
    r.source,
    r.traceId,
  ];
}

export const INSERT_SQL = `INSERT INTO audit_records (sequence, event_id, event_type, aggregate_type,
  aggregate_id, aggregate_version, project_id, actor_type, actor_id, actor_display_name,
  correlation_id, causation_id, occurred_at, occurred_at_subus, recorded_at, recorded_at_subus,
  payload_json, prev_hash, hash, source, trace_id)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`;
