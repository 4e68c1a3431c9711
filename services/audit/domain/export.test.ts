import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { AuditRecordSchema } from "../../../gen/codex/audit/v1/audit_record_pb.js";
import { ExportFormat } from "../../../gen/codex/audit/v1/audit_service_pb.js";
import { ActorType } from "../../../gen/codex/events/v1/envelope_pb.js";
import { ExportChunker } from "./chunker.js";
import { csvField, csvRow, parseCsv } from "./csv.js";
import { CSV_COLUMNS, exportFormatter } from "./export-format.js";

const record = create(AuditRecordSchema, {
  sequence: 7n,
  eventId: "e7",
  eventType: "codex.events.v1.ProjectCreated",
  actor: { type: ActorType.USER, id: "alice" },
  occurredAt: timestampFromMs(Date.UTC(2026, 10, 27, 10, 0, 0, 123)),
  recordedAt: timestampFromMs(Date.UTC(2026, 10, 27, 10, 0, 1)),
  payloadJson: JSON.stringify({ name: 'a, "quoted"\r\nvalue' }),
  hash: "h",
});

describe("CSV (RFC 4180)", () => {
  it("quotes only fields that need it and doubles quotes", () => {
    expect(csvField("plain")).toBe("plain");
    expect(csvField("a,b")).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField("line\nbreak")).toBe('"line\nbreak"');
    expect(csvRow(["a", "b,c"])).toBe('a,"b,c"\r\n');
  });

  it("renders records that parse back to the same values", () => {
    const f = exportFormatter(ExportFormat.CSV);
    const rows = parseCsv(f.header + f.record(record));
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    const row = Object.fromEntries(CSV_COLUMNS.map((c, i) => [c, rows[1]?.[i]]));
    expect(row).toMatchObject({
      sequence: "7",
      actor_type: "ACTOR_TYPE_USER",
      actor_id: "alice",
      occurred_at: "2026-11-27T10:00:00.123Z",
      recorded_at: "2026-11-27T10:00:01Z",
      payload_json: record.payloadJson,
      hash: "h",
    });
    expect(rows).toHaveLength(2);
  });

  it("renders JSONL as proto3 JSON with proto field names, one record per line", () => {
    const line = exportFormatter(ExportFormat.JSONL).record(record);
    expect(line.endsWith("\n")).toBe(true);
    expect(line.slice(0, -1)).not.toContain("\n");
    expect(JSON.parse(line)).toMatchObject({
      sequence: "7",
      event_id: "e7",
      payload_json: record.payloadJson,
    });
  });
});

describe("export chunks", () => {
  it("never exceed the limit, end on record boundaries and put the header first", () => {
    const chunker = new ExportChunker(100, "HEADER\n");
    const chunks = [];
    for (let i = 1n; i <= 20n; i++) {
      const full = chunker.add(`record-${i.toString().padStart(3, "0")}-${"x".repeat(20)}\n`, i);
      if (full) chunks.push(full);
    }
    chunks.push(chunker.flush());
    const text = chunks.map((c) => Buffer.from(c.data).toString()).join("");
    expect(text.startsWith("HEADER\nrecord-001")).toBe(true);
    expect(text.split("\n").filter((l) => l.startsWith("record-"))).toHaveLength(20);
    for (const c of chunks) {
      expect(c.data.length).toBeLessThanOrEqual(100);
      expect(Buffer.from(c.data).toString().endsWith("\n")).toBe(true);
    }
    expect(chunks.reduce((n, c) => n + c.recordsCount, 0)).toBe(20);
    expect(chunks[0]?.firstSequence).toBe(1n);
    expect(chunks.at(-1)?.lastSequence).toBe(20n);
  });

  it("sends a record larger than the limit alone rather than cutting it", () => {
    const chunker = new ExportChunker(10);
    expect(chunker.add("short\n", 1n)).toBeUndefined();
    const first = chunker.add(`${"y".repeat(50)}\n`, 2n);
    expect(first?.recordsCount).toBe(1);
    const big = chunker.flush();
    expect(big).toMatchObject({ recordsCount: 1, firstSequence: 2n, lastSequence: 2n });
    expect(big.data.length).toBe(51);
  });
});
