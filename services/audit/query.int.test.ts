import { randomUUID } from "node:crypto";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../gen/codex/audit/v1/audit_record_pb.js";
import { AuditService } from "../../gen/codex/audit/v1/audit_service_pb.js";
import {
  MemberAddedSchema,
  ProjectCreatedSchema,
  ProjectUpdatedSchema,
} from "../../gen/codex/events/v1/project_events_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { Principal } from "../../mesh/context.js";
import { Code, type ServiceError } from "../../mesh/errors.js";
import { checkHealth } from "../../test/support/grpc-probes.js";
import {
  type AuditTestService,
  envelopeOf,
  principals,
  publishEvent,
  startAudit,
  waitForEvents,
} from "./testing.js";

const p1 = randomUUID();
const p2 = randomUUID();
const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
const corr = randomUUID();

/** 12 events: p1 created, 6 updates by alternating actors, a member added; p2 created and updated. */
function scenario() {
  const agg = { aggregateType: "project" };
  return [
    envelopeOf(
      ProjectCreatedSchema,
      { projectId: p1, name: "one" },
      { ...agg, aggregateId: p1, projectId: p1, occurredAtMs: T0, correlationId: corr },
    ),
    ...Array.from({ length: 6 }, (_, i) =>
      envelopeOf(
        ProjectUpdatedSchema,
        { projectId: p1, changedFields: ["description"], description: `rev ${i}` },
        {
          ...agg,
          aggregateId: p1,
          projectId: p1,
          occurredAtMs: T0 + (i + 1) * MIN,
          actorId: i % 2 ? "bob" : "alice",
          version: i + 2,
        },
      ),
    ),
    envelopeOf(
      MemberAddedSchema,
      { projectId: p1, principalId: "bob" },
      {
        aggregateType: "member",
        aggregateId: `${p1}/bob`,
        projectId: p1,
        occurredAtMs: T0 + 10 * MIN,
        correlationId: corr,
      },
    ),
    envelopeOf(
      ProjectCreatedSchema,
      { projectId: p2, name: "two" },
      { ...agg, aggregateId: p2, projectId: p2, occurredAtMs: T0 + 11 * MIN },
    ),
    envelopeOf(
      ProjectUpdatedSchema,
      { projectId: p2 },
      { ...agg, aggregateId: p2, projectId: p2, occurredAtMs: T0 + 12 * MIN, actorId: "carol" },
    ),
  ];
}

describe("querying the trail", () => {
  let svc: AuditTestService;
  const events = scenario();
  const as = (p?: Principal) => svc.client(AuditService, p);
  const ids = (rs: AuditRecord[]) => rs.map((r) => r.eventId);

  beforeAll(async () => {
    svc = await startAudit();
    const { js, subjects } = svc.running.host.nats;
    for (const e of events) await publishEvent(js, subjects, e);
    await waitForEvents(
      svc.running.host.pool,
      events.map((e) => e.id),
    );
  });
  afterAll(async () => svc?.cleanup());

  it("reports SERVING through standard gRPC health", async () => {
    expect(await checkHealth(svc.running.address)).toBe("SERVING");
    expect(await checkHealth(svc.running.address, "codex.audit.v1.AuditService")).toBe("SERVING");
  });

  it("pages through a project in sequence order with stable tokens", async () => {
    const owner = as(principals.owner(p1));
    const seen: AuditRecord[] = [];
    let token = "";
    let pages = 0;
    do {
      const res = await owner.queryAuditRecords({ projectId: p1, pageSize: 3, pageToken: token });
      seen.push(...res.auditRecords);
      token = res.nextPageToken;
      pages++;
    } while (token !== "");
    expect(pages).toBe(3);
    expect(ids(seen)).toEqual(events.slice(0, 8).map((e) => e.id));
    const seqs = seen.map((r) => r.sequence);
    expect([...seqs].sort((a, b) => (a < b ? -1 : 1))).toEqual(seqs);
    const newest = await owner.queryAuditRecords({ projectId: p1, pageSize: 2, newestFirst: true });
    expect(ids(newest.auditRecords)).toEqual([events[7]!.id, events[6]!.id]);
    const next = await owner.queryAuditRecords({
      projectId: p1,
      pageSize: 2,
      newestFirst: true,
      pageToken: newest.nextPageToken,
    });
    expect(ids(next.auditRecords)).toEqual([events[5]!.id, events[4]!.id]);
  });

  it("filters by aggregate, actor, correlation id, event type, event id and time range", async () => {
    const q = (req: Parameters<ReturnType<typeof as>["queryAuditRecords"]>[0]) =>
      as(principals.maintainer(p1))
        .queryAuditRecords({ projectId: p1, ...req })
        .then((r) => ids(r.auditRecords));
    expect(await q({ aggregateType: "member" })).toEqual([events[7]!.id]);
    expect(await q({ aggregateType: "project", aggregateId: p1 })).toEqual(
      events.slice(0, 7).map((e) => e.id),
    );
    expect(await q({ actorId: "bob" })).toEqual([events[2]!.id, events[4]!.id, events[6]!.id]);
    expect(await q({ correlationId: corr })).toEqual([events[0]!.id, events[7]!.id]);
    expect(await q({ eventTypes: ["MemberAdded", "codex.events.v1.ProjectCreated"] })).toEqual([
      events[0]!.id,
      events[7]!.id,
    ]);
    expect(await q({ eventId: events[3]!.id })).toEqual([events[3]!.id]);
    const range = await q({
      startTime: timestampFromMs(T0 + 2 * MIN),
      endTime: timestampFromMs(T0 + 5 * MIN),
    });
    expect(range).toEqual(events.slice(2, 5).map((e) => e.id)); // start inclusive, end exclusive
    const all = await as(principals.admin).queryAuditRecords({ actorId: "carol" });
    expect(ids(all.auditRecords)).toEqual([events[9]!.id]);
  });

  it("returns records as recorded: envelope fields, actor, trace id and JSON payload", async () => {
    const res = await as(principals.owner(p1)).queryAuditRecords({ projectId: p1, eventId: events[0]!.id });
    const r = res.auditRecords[0]!;
    expect(r).toMatchObject({
      eventType: "codex.events.v1.ProjectCreated",
      aggregateType: "project",
      aggregateId: p1,
      projectId: p1,
      correlationId: corr,
      source: "test",
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      actor: { id: "alice", displayName: "Alice" },
    });
    expect(JSON.parse(r.payloadJson)).toMatchObject({
      project_id: p1,
      name: "one",
      labels: {},
      description: "",
    });
    expect((await as(principals.owner(p1)).getAuditRecord({ sequence: r.sequence })).auditRecord?.hash).toBe(
      r.hash,
    );
  });

  it("refuses invalid queries with field violations", async () => {
    const admin = as(principals.admin);
    const bad = (await admin
      .queryAuditRecords({ aggregateId: "x" })
      .catch((e: unknown) => e)) as ServiceError;
    expect(bad.code).toBe(Code.INVALID_ARGUMENT);
    expect(bad.findDetail(BadRequestSchema)?.fieldViolations.map((v) => v.field)).toEqual(["aggregate_id"]);
    const reversed = admin.queryAuditRecords({
      startTime: timestampFromMs(T0 + MIN),
      endTime: timestampFromMs(T0),
    });
    await expect(reversed).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
    await expect(admin.queryAuditRecords({ pageToken: "garbage" })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    const page = await admin.queryAuditRecords({ projectId: p1, pageSize: 1 });
    const reused = admin.queryAuditRecords({ projectId: p2, pageSize: 1, pageToken: page.nextPageToken });
    await expect(reused).rejects.toMatchObject({ code: Code.INVALID_ARGUMENT });
  });

  it("authenticates and authorizes every read", async () => {
    const denied = { code: Code.PERMISSION_DENIED };
    await expect(as().queryAuditRecords({ projectId: p1 })).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
    });
    await expect(as().getAuditRecord({ sequence: 1n })).rejects.toMatchObject({ code: Code.UNAUTHENTICATED });
    await expect(as(principals.viewer(p1)).queryAuditRecords({ projectId: p1 })).rejects.toMatchObject(
      denied,
    );
    await expect(as(principals.owner(p1)).queryAuditRecords({ projectId: p2 })).rejects.toMatchObject(denied);
    await expect(as(principals.owner(p1)).queryAuditRecords({})).rejects.toMatchObject(denied);
    await expect(as(principals.apiKey(p1)).queryAuditRecords({ projectId: p1 })).rejects.toMatchObject(
      denied,
    );
    const p2Record = (await as(principals.admin).queryAuditRecords({ projectId: p2 })).auditRecords[0]!;
    await expect(
      as(principals.owner(p1)).getAuditRecord({ sequence: p2Record.sequence }),
    ).rejects.toMatchObject(denied);
    // Not revealing whether a sequence exists: non-admins get PERMISSION_DENIED, admins NOT_FOUND.
    await expect(as(principals.owner(p1)).getAuditRecord({ sequence: 999_999n })).rejects.toMatchObject(
      denied,
    );
    await expect(as(principals.admin).getAuditRecord({ sequence: 999_999n })).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
    const platformAdmin = { type: "user", id: "root", projectRoles: { "*": "admin" } } as const;
    expect((await as(platformAdmin).queryAuditRecords({})).auditRecords.length).toBeGreaterThanOrEqual(10);
  });
});
