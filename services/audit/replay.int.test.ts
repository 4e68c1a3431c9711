import { randomUUID } from "node:crypto";
import { create, type DescMessage, type JsonObject, type MessageShape, toJson } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../../gen/codex/audit/v1/audit_service_pb.js";
import {
  ToolRecipeSetSchema,
  WorkItemCreatedSchema,
  WorkItemStateChangedSchema,
  WorkItemUpdatedSchema,
} from "../../gen/codex/events/v1/workitem_events_pb.js";
import { WorkItemKind, WorkItemSchema, WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { Code } from "../../mesh/errors.js";
import {
  type AuditTestService,
  envelopeOf,
  principals,
  publishEvent,
  startAudit,
  waitForEvents,
} from "./testing.js";

const projectId = randomUUID();
const itemId = randomUUID();
const T0 = Date.UTC(2026, 5, 1, 9);
const MIN = 60_000;
const SECRET = "ghp_0123456789abcdefSECRET";

/** The work item as the workitem service holds it at each step of its life. */
const created = create(WorkItemSchema, {
  id: itemId,
  projectId,
  title: "Deploy api",
  kind: WorkItemKind.DEPLOY,
  labels: { team: "core" },
  state: WorkItemState.PROPOSED,
  environment: "production",
  createdBy: "alice",
  createTime: timestampFromMs(T0),
  updateTime: timestampFromMs(T0),
  etag: "v1",
});
const final = create(WorkItemSchema, {
  ...created,
  title: "Deploy api v2",
  state: WorkItemState.IN_PROGRESS,
  recipeVersion: 1,
  updateTime: timestampFromMs(T0 + 5 * MIN),
  stateChangeTime: timestampFromMs(T0 + 4 * MIN),
  etag: "v6",
});

function transition(from: WorkItemState, to: WorkItemState, minute: number) {
  return create(WorkItemStateChangedSchema, {
    workItemId: itemId,
    previousState: from,
    newState: to,
    changedBy: "olivia",
    reason: `to ${WorkItemState[to]}`,
    timestamp: timestampFromMs(T0 + minute * MIN),
    projectId,
  });
}

/** The events the workitem service publishes for that life, in order. */
const steps: [DescMessage, MessageShape<DescMessage>][] = [
  [WorkItemCreatedSchema, create(WorkItemCreatedSchema, { workItem: created })],
  [WorkItemStateChangedSchema, transition(WorkItemState.PROPOSED, WorkItemState.APPROVED, 1)],
  [
    ToolRecipeSetSchema,
    create(ToolRecipeSetSchema, {
      workItemId: itemId,
      recipe: {
        workItemId: itemId,
        version: 1,
        tools: [
          {
            name: "gh",
            version: "2.40.0",
            checksum: `sha256:${"a".repeat(64)}`,
            env: { GITHUB_TOKEN: SECRET },
          },
        ],
        steps: [{ run: "gh release create" }],
      },
    }),
  ],
  [WorkItemStateChangedSchema, transition(WorkItemState.APPROVED, WorkItemState.QUEUED, 3)],
  [WorkItemStateChangedSchema, transition(WorkItemState.QUEUED, WorkItemState.IN_PROGRESS, 4)],
  [
    WorkItemUpdatedSchema,
    create(WorkItemUpdatedSchema, { workItem: final, updateMask: { paths: ["title"] } }),
  ],
];

const jsonOpts = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

describe("replaying an aggregate", () => {
  let svc: AuditTestService;
  const events = steps.map(([schema, payload], i) =>
    envelopeOf(schema, payload, {
      aggregateType: "work_item",
      aggregateId: itemId,
      projectId,
      version: i + 1,
      occurredAtMs: T0 + i * MIN,
    }),
  );
  const replay = (
    req: { upToSequence?: bigint; asOfTime?: ReturnType<typeof timestampFromMs> },
    p = principals.owner(projectId),
  ) =>
    svc.client(AuditService, p).replayAggregate({ aggregateType: "work_item", aggregateId: itemId, ...req });

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

  it("rebuilds the final state, which equals the owning service's work item", async () => {
    const res = await replay({});
    const state = res.state as JsonObject;
    // The comparison a caller makes with WorkItemService.GetWorkItem's answer:
    expect(state.work_item).toEqual(toJson(WorkItemSchema, final, jsonOpts));
    expect(state.new_state).toBe(`WORK_ITEM_STATE_${WorkItemState[final.state]}`);
    // And the whole fold: top-level fields of each payload, later ones winning, secrets redacted.
    const expected: JsonObject = {};
    for (const [schema, payload] of steps) Object.assign(expected, toJson(schema, payload, jsonOpts));
    ((expected.recipe as JsonObject).tools as JsonObject[])[0]!.env = { GITHUB_TOKEN: "[REDACTED]" };
    expect(state).toEqual(expected);
    expect(JSON.stringify(state)).not.toContain(SECRET);
    expect(res).toMatchObject({
      eventsCount: 6n,
      aggregateVersion: 6n,
      lastEventType: "codex.events.v1.WorkItemUpdated",
      firstOccurredAt: { seconds: BigInt(T0 / 1000) },
      lastOccurredAt: { seconds: BigInt((T0 + 5 * MIN) / 1000) },
    });
  });

  it("rebuilds past states by sequence or by time", async () => {
    const all = await svc
      .client(AuditService, principals.admin)
      .queryAuditRecords({ aggregateType: "work_item", aggregateId: itemId });
    const fourth = all.auditRecords[3]!;
    const bySeq = await replay({ upToSequence: fourth.sequence });
    expect(bySeq).toMatchObject({ eventsCount: 4n, aggregateVersion: 4n, lastSequence: fourth.sequence });
    expect((bySeq.state as JsonObject).new_state).toBe("WORK_ITEM_STATE_QUEUED");
    expect(((bySeq.state as JsonObject).work_item as JsonObject).state).toBe("WORK_ITEM_STATE_PROPOSED");
    const byTime = await replay({ asOfTime: timestampFromMs(T0 + 2 * MIN) }); // events at minutes 0 and 1
    expect(byTime).toMatchObject({ eventsCount: 2n, lastEventType: "codex.events.v1.WorkItemStateChanged" });
  });

  it("keeps the secret out of the store itself, not only out of answers", async () => {
    const { rows } = await svc.running.host.pool.query(
      "SELECT sequence FROM audit_records WHERE payload_json LIKE $1",
      [`%${SECRET}%`],
    );
    expect(rows).toEqual([]);
    const recipe = await svc
      .client(AuditService, principals.admin)
      .queryAuditRecords({ eventTypes: ["ToolRecipeSet"], projectId });
    expect(JSON.parse(recipe.auditRecords[0]!.payloadJson).recipe.tools[0].env).toEqual({
      GITHUB_TOKEN: "[REDACTED]",
    });
  });

  it("validates, authorizes and reports unknown aggregates", async () => {
    const admin = svc.client(AuditService, principals.admin);
    await expect(admin.replayAggregate({ aggregateType: "work_item" })).rejects.toMatchObject({
      code: Code.INVALID_ARGUMENT,
    });
    await expect(
      admin.replayAggregate({ aggregateType: "work_item", aggregateId: "nope" }),
    ).rejects.toMatchObject({
      code: Code.NOT_FOUND,
    });
    await expect(replay({}, principals.owner("other-project"))).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    await expect(replay({}, principals.apiKey(projectId))).rejects.toMatchObject({
      code: Code.PERMISSION_DENIED,
    });
    await expect(
      svc.client(AuditService).replayAggregate({ aggregateType: "x", aggregateId: "y" }),
    ).rejects.toMatchObject({
      code: Code.UNAUTHENTICATED,
    });
  });
});
