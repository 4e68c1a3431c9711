import { toJson, toJsonString } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { type AuditRecord, AuditRecordSchema } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { ExportFormat } from "../../../gen/codex/audit/v1/audit_service_pb.js";
import { ActorTypeSchema } from "../../../gen/codex/events/v1/envelope_pb.js";
import { csvRow } from "./csv.js";

/** CSV columns, in the order the API documents (ExportFormat.EXPORT_FORMAT_CSV). */
export const CSV_COLUMNS = [
  "sequence",
  "event_id",
  "event_type",
  "aggregate_type",
  "aggregate_id",
  "aggregate_version",
  "project_id",
  "actor_type",
  "actor_id",
  "correlation_id",
  "causation_id",
  "occurred_at",
  "recorded_at",
  "source",
  "trace_id",
  "payload_json",
  "prev_hash",
  "hash",
] as const;

/** RFC 3339 UTC as proto3 JSON writes it ("2026-11-27T10:00:00.123Z"); "" when unset. */
function rfc3339(ts: Timestamp | undefined): string {
  return ts === undefined ? "" : (toJson(TimestampSchema, ts) as string);
}

/** The actor type's enum value name ("ACTOR_TYPE_USER"); "" when the event had no actor. */
function actorTypeName(r: AuditRecord): string {
  if (r.actor === undefined) return "";
  return ActorTypeSchema.value[r.actor.type]?.name ?? String(r.actor.type);
}

/** One record as a CSV row with the columns of {@link CSV_COLUMNS}. */
export function csvRecord(r: AuditRecord): string {
  return csvRow([
    r.sequence.toString(),
    r.eventId,
    r.eventType,
    r.aggregateType,
    r.aggregateId,
    r.aggregateVersion.toString(),
    r.projectId,
    actorTypeName(r),
    r.actor?.id ?? "",
    r.correlationId,
    r.causationId,
    rfc3339(r.occurredAt),
    rfc3339(r.recordedAt),
    r.source,
    r.traceId,
    r.payloadJson,
    r.prevHash,
    r.hash,
  ]);
}

/** One record as a JSON line: proto3 JSON, proto field names, defaults emitted. */
export function jsonlRecord(r: AuditRecord): string {
  return `${toJsonString(AuditRecordSchema, r, { useProtoFieldName: true, alwaysEmitImplicit: true })}\n`;
}

/** Text the file starts with (the CSV header), and the renderer of one record. */
export function exportFormatter(format: ExportFormat): {
  header: string;
  record: (r: AuditRecord) => string;
} {
  switch (format) {
    case ExportFormat.CSV:
      return { header: csvRow(CSV_COLUMNS), record: csvRecord };
    case ExportFormat.JSONL:
      return { header: "", record: jsonlRecord };
    default:
      throw new RangeError(`unsupported export format ${format}`);
  }
}
