import { readdirSync } from "node:fs";
import { create, type DescFile } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventEnvelopeSchema } from "../../../gen/codex/events/v1/envelope_pb.js";
import { ProjectCreatedSchema } from "../../../gen/codex/events/v1/project_events_pb.js";
import { draftFromEnvelope, InvalidEnvelopeError, traceIdOf } from "./envelope-record.js";
import { EVENT_FILES, eventRegistry } from "./event-registry.js";
import { fromPgParts, toPgTimestamp } from "./timestamps.js";

describe("envelope to record", () => {
  it("copies the envelope and extracts the trace id", () => {
    const env = create(EventEnvelopeSchema, {
      id: "e1",
      aggregateType: "project",
      aggregateId: "p1",
      projectId: "p1",
      trace: { traceparent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01" },
      payload: anyPack(ProjectCreatedSchema, create(ProjectCreatedSchema, { projectId: "p1" })),
    });
    const r = draftFromEnvelope(env, eventRegistry);
    expect(r.eventType).toBe("codex.events.v1.ProjectCreated");
    expect(r.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(r.actor).toBeUndefined();
    expect(JSON.parse(r.payloadJson).project_id).toBe("p1");
  });

  it("refuses envelopes the trail cannot store faithfully", () => {
    expect(() => draftFromEnvelope(create(EventEnvelopeSchema, {}), eventRegistry)).toThrow(
      InvalidEnvelopeError,
    );
    const nul = create(EventEnvelopeSchema, { id: "e", aggregateId: "a\u0000b" });
    expect(() => draftFromEnvelope(nul, eventRegistry)).toThrow(/NUL/);
    const badTime = create(EventEnvelopeSchema, {
      id: "e",
      occurredAt: { seconds: 1n, nanos: 2_000_000_000 },
    });
    expect(() => draftFromEnvelope(badTime, eventRegistry)).toThrow(/occurred_at/);
  });

  it("ignores absent or all-zero trace ids", () => {
    expect(traceIdOf(undefined)).toBe("");
    expect(traceIdOf("00-00000000000000000000000000000000-00f067aa0ba902b7-01")).toBe("");
    expect(traceIdOf("garbage")).toBe("");
  });
});

describe("timestamps in PostgreSQL", () => {
  it("split into microsecond text and the nanoseconds below, losslessly, also before 1970", () => {
    for (const [seconds, nanos] of [
      [1_795_773_600n, 123_456_789],
      [-1n, 999_999_999],
      [0n, 0],
    ] as const) {
      const pg = toPgTimestamp({ $typeName: "google.protobuf.Timestamp", seconds, nanos });
      const micros = Math.floor(nanos / 1000);
      expect(pg.text).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      expect(fromPgParts(seconds, micros, pg.subMicroNanos)).toMatchObject({ seconds, nanos });
    }
  });
});

describe("event registry", () => {
  it("covers every generated events file, so no event type is recorded undecoded", async () => {
    const dir = new URL("../../../gen/codex/events/v1/", import.meta.url);
    const files = readdirSync(dir).filter((f) => f.endsWith("_pb.ts"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const mod = (await import(new URL(f, dir).href)) as Record<string, unknown>;
      const descs = Object.entries(mod)
        .filter(([k]) => k.startsWith("file_"))
        .map(([, v]) => v as DescFile);
      for (const d of descs) expect(EVENT_FILES, `${f} missing from EVENT_FILES`).toContain(d);
      for (const d of descs) for (const m of d.messages) expect(eventRegistry.getMessage(m.typeName)).toBe(m);
    }
  });
});
