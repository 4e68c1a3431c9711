import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { toJson } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuditRecord, AuditRecordSchema } from "../../gen/codex/audit/v1/audit_record_pb.js";
import type { ExportAuditRecordsRequestSchema } from "../../gen/codex/audit/v1/audit_service_pb.js";
import {
  AuditService,
  type ExportAuditRecordsRequest,
  type ExportAuditRecordsResponse,
  ExportFormat,
} from "../../gen/codex/audit/v1/audit_service_pb.js";
import { ProjectUpdatedSchema } from "../../gen/codex/events/v1/project_events_pb.js";
import { ServiceHealthChangedSchema } from "../../gen/codex/events/v1/system_events_pb.js";
import type { Principal } from "../../mesh/context.js";
import { Code, type ServiceError } from "../../mesh/errors.js";
import { eventually } from "../../mesh/nats/testing.js";
import { parseCsv } from "./domain/csv.js";
import { CSV_COLUMNS } from "./domain/export-format.js";
import {
  type AuditTestService,
  envelopeOf,
  principals,
  publishEvent,
  publishSystemEvent,
  startAudit,
  waitForEvents,
} from "./testing.js";

const projectId = randomUUID();
const T0 = Date.UTC(2026, 2, 1);
const SEC = 1_000;
const CHUNK = 1_024;
const RECORDS = 200;

describe("compliance export", () => {
  let svc: AuditTestService;
  let recorded: AuditRecord[];
  const as = (p: Principal) => svc.client(AuditService, p);

  async function exportAll(
    req: MessageInitShape<typeof ExportAuditRecordsRequestSchema>,
    p = principals.owner(projectId),
  ) {
    const chunks: ExportAuditRecordsResponse[] = [];
    for await (const c of as(p).exportAuditRecords(req)) chunks.push(c);
    return { chunks, text: Buffer.concat(chunks.map((c) => c.data)).toString("utf8") };
  }

  beforeAll(async () => {
    // Small chunks and batches, so a few hundred records exercise chunking and the cursor.
    svc = await startAudit({ env: { AUDIT_EXPORT_CHUNK_BYTES: String(CHUNK), AUDIT_BATCH_SIZE: "7" } });
    const { js, subjects } = svc.running.host.nats;
    const events = Array.from({ length: RECORDS }, (_, i) =>
      envelopeOf(
        ProjectUpdatedSchema,
        { projectId, changedFields: ["description"], description: `rev ${i}: "quoted", comma,\nnew line` },
        {
          aggregateType: "project",
          aggregateId: projectId,
          projectId,
          occurredAtMs: T0 + i * SEC,
          version: i + 1,
        },
      ),
    );
    for (const e of events) await publishEvent(js, subjects, e);
    const other = envelopeOf(
      ServiceHealthChangedSchema,
      { service: "x" },
      { aggregateType: "service", aggregateId: "x" },
    );
    await publishSystemEvent(js, subjects, other);
    await waitForEvents(svc.running.host.pool, [...events.map((e) => e.id), other.id]);
    recorded = [];
    let pageToken = "";
    do {
      const page = await as(principals.admin).queryAuditRecords({ projectId, pageSize: 1000, pageToken });
      recorded.push(...page.auditRecords);
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(recorded).toHaveLength(RECORDS);
  });
  afterAll(async () => svc?.cleanup());

  it("streams JSONL equal to the records, in bounded chunks that end on record boundaries", async () => {
    const { chunks, text } = await exportAll({ format: ExportFormat.JSONL, projectId });
    const lines = text.split("\n").filter((l) => l !== "");
    const jsonOpts = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;
    expect(lines.map((l) => JSON.parse(l))).toEqual(
      recorded.map((r) => toJson(AuditRecordSchema, r, jsonOpts)),
    );
    expect(chunks.length).toBeGreaterThan(10);
    for (const c of chunks) {
      expect(c.data.length).toBeLessThanOrEqual(CHUNK);
      if (c.recordsCount > 0) expect(Buffer.from(c.data).toString().endsWith("\n")).toBe(true);
    }
    expect(chunks.filter((c) => c.lastChunk)).toEqual([chunks.at(-1)]);
    expect(chunks.at(-1)?.totalRecords).toBe(BigInt(RECORDS));
    expect(chunks.reduce((n, c) => n + c.recordsCount, 0)).toBe(RECORDS);
    expect(chunks[0]?.firstSequence).toBe(recorded[0]?.sequence);
  });

  it("streams RFC 4180 CSV with the documented header and quoted payloads", async () => {
    const { text } = await exportAll({ format: ExportFormat.CSV, projectId });
    const rows = parseCsv(text);
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows).toHaveLength(RECORDS + 1);
    const col = (name: (typeof CSV_COLUMNS)[number]) => CSV_COLUMNS.indexOf(name);
    rows.slice(1).forEach((row, i) => {
      const r = recorded[i]!;
      expect(row).toHaveLength(CSV_COLUMNS.length);
      expect(row[col("sequence")]).toBe(r.sequence.toString());
      expect(row[col("event_id")]).toBe(r.eventId);
      expect(row[col("payload_json")]).toBe(r.payloadJson);
      expect(row[col("actor_type")]).toBe("ACTOR_TYPE_USER");
      expect(row[col("occurred_at")]).toBe(new Date(T0 + i * SEC).toISOString().replace(".000Z", "Z"));
      expect(row[col("hash")]).toBe(r.hash);
    });
  });

  it("exports a time range only (start inclusive, end exclusive), and an empty range as one last chunk", async () => {
    const range = { startTime: timestampFromMs(T0 + 10 * SEC), endTime: timestampFromMs(T0 + 20 * SEC) };
    const { text } = await exportAll({ format: ExportFormat.JSONL, projectId, ...range });
    const ids = text
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).event_id);
    expect(ids).toEqual(recorded.slice(10, 20).map((r) => r.eventId));
    const empty = await exportAll({
      format: ExportFormat.CSV,
      projectId,
      startTime: timestampFromMs(T0 - 10 * SEC),
      endTime: timestampFromMs(T0 - SEC),
    });
    expect(empty.chunks).toHaveLength(1);
    expect(empty.chunks[0]).toMatchObject({ lastChunk: true, totalRecords: 0n, recordsCount: 0 });
    expect(parseCsv(empty.text)).toEqual([[...CSV_COLUMNS]]);
  });

  it("allows one export per caller at a time, and records every export in the trail", async () => {
    const first = as(principals.owner(projectId))
      .exportAuditRecords({ format: ExportFormat.JSONL, projectId })
      [Symbol.asyncIterator]();
    expect((await first.next()).done).toBe(false);
    const second = await exportAll({ format: ExportFormat.JSONL, projectId }).catch(
      (e: unknown) => e as ServiceError,
    );
    expect(second).toMatchObject({ code: Code.RESOURCE_EXHAUSTED });
    expect((second as ServiceError).retryAfterMs).toBeGreaterThan(0);
    await first.return?.(); // the caller walks away: the export is released and recorded as cut short
    await eventually("export slot released", async () => {
      try {
        return (await exportAll({ format: ExportFormat.CSV, projectId })).chunks.length > 0;
      } catch {
        return false;
      }
    });
    await eventually("export events recorded", async () => {
      const res = await as(principals.admin).queryAuditRecords({ eventTypes: ["AuditRecordsExported"] });
      const payloads = res.auditRecords.map((r) => JSON.parse(r.payloadJson));
      return payloads.some((p) => p.completed === false) && payloads.filter((p) => p.completed).length >= 4;
    });
  });

  it("validates and authorizes exports", async () => {
    const fails = async (req: Partial<ExportAuditRecordsRequest>, p: Principal, code: Code) =>
      expect(
        exportAll(req as MessageInitShape<typeof ExportAuditRecordsRequestSchema>, p),
      ).rejects.toMatchObject({ code });
    await fails({ projectId }, principals.owner(projectId), Code.INVALID_ARGUMENT);
    await fails({ format: ExportFormat.CSV }, principals.owner(projectId), Code.PERMISSION_DENIED);
    await fails(
      { format: ExportFormat.CSV, projectId },
      principals.viewer(projectId),
      Code.PERMISSION_DENIED,
    );
    await fails(
      { format: ExportFormat.CSV, projectId },
      principals.apiKey(projectId),
      Code.PERMISSION_DENIED,
    );
    const all = await exportAll({ format: ExportFormat.JSONL }, principals.admin);
    expect(all.chunks.at(-1)?.totalRecords).toBeGreaterThan(BigInt(RECORDS)); // includes the system event
    const anonymous = svc.client(AuditService).exportAuditRecords({ format: ExportFormat.CSV, projectId });
    await expect(
      (async () => {
        for await (const _ of anonymous);
      })(),
    ).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
  });
});
