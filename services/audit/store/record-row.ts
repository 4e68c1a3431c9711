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

/** Per-row columns of {@link INSERT_BATCH_SQL}, in parameter order ($4 ...), with their types. */
const BATCH_COLUMNS = [
  ["event_id", "text"],
  ["event_type", "text"],
  ["aggregate_type", "text"],
  ["aggregate_id", "text"],
  ["aggregate_version", "numeric"],
  ["project_id", "text"],
  ["actor_type", "integer"],
  ["actor_id", "text"],
  ["actor_display_name", "text"],
  ["correlation_id", "text"],
  ["causation_id", "text"],
  ["occurred_at", "timestamptz"],
  ["occurred_at_subus", "integer"],
  ["payload_json", "text"],
  ["prev_hash", "text"],
  ["hash", "text"],
  ["source", "text"],
  ["trace_id", "text"],
] as const;

/**
 * Inserts a run of records in one statement: one array per column, unnested row by row.
 * Why arrays rather than a VALUES list: the statement text is the same for every batch size,
 * so it is parsed and planned once per connection (a named prepared statement), and there are
 * 21 parameters however many records a batch holds. Sequences are `$1 + ordinality - 1` and
 * all records of one append share recorded_at ($2, $3), so neither travels per row.
 */
export const INSERT_BATCH_SQL = `INSERT INTO audit_records (sequence, recorded_at, recorded_at_subus,
  ${BATCH_COLUMNS.map(([c]) => c).join(", ")})
  SELECT $1::bigint + r.n - 1, $2::timestamptz, $3::integer, ${BATCH_COLUMNS.map(([c]) => `r.${c}`).join(", ")}
  FROM unnest(${BATCH_COLUMNS.map(([, t], i) => `$${i + 4}::${t}[]`).join(", ")})
    WITH ORDINALITY AS r(${BATCH_COLUMNS.map(([c]) => c).join(", ")}, n)`;

/** One record's values for {@link BATCH_COLUMNS}, in that order. */
function rowValues(r: AuditRecord): unknown[] {
  const occurred = r.occurredAt === undefined ? undefined : toPgTimestamp(r.occurredAt);
  return [
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
    r.payloadJson,
    r.prevHash,
    r.hash,
    r.source,
    r.traceId,
  ];
}

/**
 * Parameters of {@link INSERT_BATCH_SQL} for complete records with consecutive sequences, all
 * recorded at the same instant (what appendRecords writes).
 */
export function batchParams(records: readonly AuditRecord[]): unknown[] {
  const first = records[0];
  if (first === undefined) throw new Error("no records to insert");
  if (first.recordedAt === undefined) throw new Error(`record ${first.sequence} has no recorded_at`);
  const recorded = toPgTimestamp(first.recordedAt);
  const columns = BATCH_COLUMNS.map(() => new Array<unknown>(records.length));
  records.forEach((r, i) => {
    if (r.sequence !== first.sequence + BigInt(i) || r.recordedAt !== first.recordedAt) {
      throw new Error(`record ${r.sequence} does not follow ${first.sequence} in one append`);
    }
    rowValues(r).forEach((v, c) => {
      (columns[c] as unknown[])[i] = v;
    });
  });
  return [first.sequence.toString(), recorded.text, recorded.subMicroNanos, ...columns];
}
