import { randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  type ExportAuditRecordsRequest,
  type ExportAuditRecordsResponseSchema,
  ExportFormat,
  ExportFormatSchema,
} from "../../../gen/codex/audit/v1/audit_service_pb.js";
import { AuditRecordsExportedSchema } from "../../../gen/codex/events/v1/audit_events_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { invalidArgument, resourceExhausted } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { type Chunk, ExportChunker } from "../domain/chunker.js";
import { exportFormatter } from "../domain/export-format.js";
import { parseFilter } from "../domain/filter.js";
import { publishAuditUse } from "../events/audit-events.js";
import { readChainHead } from "../store/append.js";
import { scanRecords } from "../store/query.js";
import { requirePrincipal, requireProjectReader } from "./auth.js";
import type { AuditDeps } from "./deps.js";

type ChunkMessage = MessageInitShape<typeof ExportAuditRecordsResponseSchema>;

/** How long a caller refused for a concurrent export is told to wait. */
const RETRY_AFTER_MS = 5_000;

/**
 * ExportAuditRecords: streams the matching records as JSONL or CSV.
 *
 * Memory is bounded by one batch of records plus one chunk: records are read with a keyset
 * cursor (store/query.ts scanRecords) and each chunk is sent as soon as it is full, with gRPC
 * backpressure pausing the reads. The export is a snapshot: it stops at the chain head read at
 * the start, so records appended meanwhile are not included. One export per caller at a time
 * (per replica), since an export is the most expensive read there is. Every export, completed
 * or cut short, is published as AuditRecordsExported.
 */
export async function* exportAuditRecords(
  deps: AuditDeps,
  req: ExportAuditRecordsRequest,
  ctx: CallContext,
): AsyncGenerator<ChunkMessage> {
  const principal = requirePrincipal(ctx);
  const { filter, violations } = parseFilter(req);
  if (req.format === ExportFormat.UNSPECIFIED || ExportFormatSchema.value[req.format] === undefined) {
    violations.push({ field: "format", description: "must be EXPORT_FORMAT_JSONL or EXPORT_FORMAT_CSV" });
  }
  if (violations.length > 0) throw invalidArgument("invalid export request", violations);
  requireProjectReader(principal, req.projectId);

  const key = `${principal.type}:${principal.id}`;
  if (deps.activeExports.has(key)) {
    throw resourceExhausted("an export of yours is already running", {
      subject: key,
      description: "one concurrent export per caller",
      retryAfterMs: RETRY_AFTER_MS,
    });
  }
  deps.activeExports.add(key);
  let total = 0n;
  let completed = false;
  try {
    filter.maxSequence = (await readChainHead(deps.pool)).lastSequence;
    const format = exportFormatter(req.format);
    const chunker = new ExportChunker(deps.chunkBytes, format.header);
    for await (const batch of scanRecords(deps.pool, filter, { batchSize: deps.batchSize })) {
      for (const record of batch) {
        const full = chunker.add(format.record(record), record.sequence);
        total++;
        if (full) yield message(full);
      }
      if (ctx.signal.aborted) return;
    }
    yield { ...message(chunker.flush()), lastChunk: true, totalRecords: total };
    completed = true;
  } finally {
    deps.activeExports.delete(key);
    await publishExported(deps, principal, ctx, req, total, completed).catch((err: unknown) =>
      deps.logger.warn({ err }, "could not publish the export event"),
    );
  }
}

function message(c: Chunk): ChunkMessage {
  return {
    data: c.data,
    recordsCount: c.recordsCount,
    firstSequence: c.firstSequence,
    lastSequence: c.lastSequence,
  };
}

async function publishExported(
  deps: AuditDeps,
  principal: Principal,
  ctx: CallContext,
  req: ExportAuditRecordsRequest,
  recordsCount: bigint,
  completed: boolean,
): Promise<void> {
  const payload = create(AuditRecordsExportedSchema, {
    format: ExportFormatSchema.value[req.format]?.name ?? "",
    projectId: req.projectId,
    aggregateType: req.aggregateType,
    eventTypes: req.eventTypes,
    recordsCount,
    completed,
    ...(req.startTime ? { startTime: req.startTime } : {}),
    ...(req.endTime ? { endTime: req.endTime } : {}),
  });
  await publishAuditUse(deps.pool, deps.subjects, { principal, correlationId: ctx.correlationId }, [
    {
      schema: AuditRecordsExportedSchema,
      payload,
      aggregateType: "audit_export",
      aggregateId: randomUUID(),
      projectId: req.projectId,
    },
  ]);
}
