import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  WorkItemCreatedSchema,
  WorkItemDeletedSchema,
  WorkItemUpdatedSchema,
} from "../../gen/codex/events/v1/workitem_events_pb.js";
import { ApprovalStatus, WorkItemKind, WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code } from "../../mesh/errors.js";
import { failure, type Kit, startKit } from "./test-kit.js";

let kit: Kit;
beforeAll(async () => {
  kit = await startKit();
});
afterAll(async () => kit?.cleanup());

const build = (title = "build it", labels: Record<string, string> = {}) => ({
  title,
  kind: WorkItemKind.BUILD,
  labels,
});

describe("create", () => {
  it("starts a non-risky item APPROVED and a production deploy PROPOSED with an approval request opened", async () => {
    const plain = (await kit.as("alice").createWorkItem({ projectId: kit.project, workItem: build() }))
      .workItem;
    expect(plain?.state).toBe(WorkItemState.APPROVED);
    expect(plain?.approvalStatus).toBe(ApprovalStatus.NOT_REQUIRED);
    expect(plain?.createdBy).toBe("alice");
    expect(plain?.etag).not.toBe("");

    const deploy = (
      await kit.as("alice").createWorkItem({
        projectId: kit.project,
        workItem: { title: "ship", kind: WorkItemKind.DEPLOY, environment: "production" },
      })
    ).workItem;
    expect(deploy?.state).toBe(WorkItemState.PROPOSED);
    expect(deploy?.risk?.reasons).toEqual(["kind DEPLOY to environment production"]);
    expect(deploy?.approvalStatus).toBe(ApprovalStatus.PENDING);
    const request = (
      await kit.as("viewer").getApprovalRequest({ approvalRequestId: deploy?.approvalRequestId ?? "" })
    ).approvalRequest;
    expect(request?.requestedBy).toBe("service:workitem");
    expect(request?.onBehalfOf).toBe("alice");
    const created = await kit.eventsOf(WorkItemCreatedSchema, 1, (e) => e.workItem?.id === deploy?.id);
    expect(created[0]?.workItem?.state).toBe(WorkItemState.PROPOSED);
  });

  it("is idempotent by request_id: a retry returns the same item, a different request with the key is refused", async () => {
    const requestId = randomUUID();
    const req = { projectId: kit.project, workItem: build("once"), requestId };
    const [a, b] = await Promise.all([
      kit.as("alice").createWorkItem(req),
      kit.as("alice").createWorkItem(req),
    ]);
    const c = await kit.as("alice").createWorkItem(req);
    expect(a.workItem?.id).toBe(b.workItem?.id);
    expect(c.workItem?.id).toBe(a.workItem?.id);
    const reused = await failure(kit.as("alice").createWorkItem({ ...req, workItem: build("other") }));
    expect(reused.code).toBe(Code.FAILED_PRECONDITION);
    expect(reused.reason).toBe("IDEMPOTENCY_KEY_REUSED");
    await kit.settled();
    const events = await kit.eventsOf(WorkItemCreatedSchema, 1, (e) => e.workItem?.id === a.workItem?.id);
    expect(events).toHaveLength(1);
  });

  it("reports every invalid field at once", async () => {
    const f = await failure(
      kit.as("alice").createWorkItem({
        projectId: kit.project,
        workItem: {
          title: "",
          kind: WorkItemKind.UNSPECIFIED,
          labels: { "Bad Key": "x" },
          environment: "PROD!",
        },
      }),
    );
    expect(f.code).toBe(Code.INVALID_ARGUMENT);
    const fields = f.err.findDetail(BadRequestSchema)?.fieldViolations.map((v) => v.field) ?? [];
    expect(fields).toEqual(
      expect.arrayContaining([
        "work_item.title",
        "work_item.kind",
        "work_item.environment",
        'work_item.labels["Bad Key"]',
      ]),
    );
  });

  it("authorizes by project role: outsiders see NOT_FOUND, viewers cannot write, anonymous callers are refused", async () => {
    const req = { projectId: kit.project, workItem: build() };
    expect((await failure(kit.as("outsider").createWorkItem(req))).code).toBe(Code.NOT_FOUND);
    expect((await failure(kit.as("viewer").createWorkItem(req))).code).toBe(Code.PERMISSION_DENIED);
    const anonymous = kit.svc.client(WorkItemService);
    expect((await failure(anonymous.createWorkItem(req))).code).toBe(Code.UNAUTHENTICATED);
    const item = (await kit.as("scheduler").createWorkItem(req)).workItem;
    expect(item?.createdBy).toBe("service:scheduler");
    expect((await failure(kit.as("outsider").getWorkItem({ workItemId: item?.id ?? "" }))).code).toBe(
      Code.NOT_FOUND,
    );
    expect((await kit.as("viewer").getWorkItem({ workItemId: item?.id ?? "" })).workItem?.id).toBe(item?.id);
  });
});

describe("list", () => {
  it("filters by state, kind and labels and pages without gaps or repeats", async () => {
    const tag = `batch-${Date.now()}`;
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const labels: Record<string, string> = { batch: tag, parity: i % 2 === 0 ? "even" : "odd" };
      if (i === 3) labels.special = "yes";
      const res = await kit
        .as("alice")
        .createWorkItem({ projectId: kit.project, workItem: build(`item ${i}`, labels) });
      ids.push(res.workItem?.id ?? "");
    }
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await kit
        .as("viewer")
        .listWorkItems({ projectId: kit.project, labelSelector: [`batch=${tag}`], pageSize: 3, pageToken });
      expect(page.workItems.length).toBeLessThanOrEqual(3);
      seen.push(...page.workItems.map((w) => w.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual([...ids].reverse());

    const even = await kit
      .as("viewer")
      .listWorkItems({ projectId: kit.project, labelSelector: [`batch=${tag}`, "parity=even"] });
    expect(even.workItems).toHaveLength(4);
    const special = await kit
      .as("viewer")
      .listWorkItems({ projectId: kit.project, labelSelector: [`batch=${tag}`, "special"] });
    expect(special.workItems.map((w) => w.id)).toEqual([ids[3]]);
    const proposed = await kit.as("viewer").listWorkItems({
      projectId: kit.project,
      labelSelector: [`batch=${tag}`],
      states: [WorkItemState.PROPOSED],
    });
    expect(proposed.workItems).toHaveLength(0);
    const deploys = await kit
      .as("viewer")
      .listWorkItems({ projectId: kit.project, kinds: [WorkItemKind.DEPLOY] });
    expect(deploys.workItems.every((w) => w.kind === WorkItemKind.DEPLOY)).toBe(true);
  });

  it("refuses malformed selectors and tokens reused with other filters, and hides other projects", async () => {
    expect(
      (await failure(kit.as("viewer").listWorkItems({ projectId: kit.project, labelSelector: ["=x"] }))).code,
    ).toBe(Code.INVALID_ARGUMENT);
    const first = await kit.as("viewer").listWorkItems({ projectId: kit.project, pageSize: 1 });
    expect(first.nextPageToken).not.toBe("");
    const reused = await failure(
      kit.as("viewer").listWorkItems({
        projectId: kit.project,
        pageSize: 1,
        pageToken: first.nextPageToken,
        environment: "x",
      }),
    );
    expect(reused.code).toBe(Code.INVALID_ARGUMENT);
    expect(
      (await failure(kit.as("viewer").listWorkItems({ projectId: kit.project, pageToken: "garbage" }))).code,
    ).toBe(Code.INVALID_ARGUMENT);
    expect((await failure(kit.as("outsider").listWorkItems({ projectId: kit.project }))).code).toBe(
      Code.NOT_FOUND,
    );
    expect((await kit.as("outsider").listWorkItems({})).workItems).toHaveLength(0);
    expect((await kit.as("viewer").listWorkItems({ pageSize: 1 })).workItems).toHaveLength(1);
  });
});

describe("update", () => {
  it("changes only the masked fields, honours etags and emits WorkItemUpdated", async () => {
    const item = (await kit.as("alice").createWorkItem({ projectId: kit.project, workItem: build("before") }))
      .workItem;
    const id = item?.id ?? "";
    const updated = await kit.as("bob").updateWorkItem({
      workItem: { id, title: "after", description: "ignored: not in the mask", etag: item?.etag ?? "" },
      updateMask: { paths: ["title"] },
    });
    expect(updated.workItem?.title).toBe("after");
    expect(updated.workItem?.description).toBe("");
    expect(updated.workItem?.etag).not.toBe(item?.etag);
    const stale = await failure(
      kit.as("bob").updateWorkItem({
        workItem: { id, title: "x", etag: item?.etag ?? "" },
        updateMask: { paths: ["title"] },
      }),
    );
    expect(stale.code).toBe(Code.ABORTED);
    expect(stale.reason).toBe("ETAG_MISMATCH");
    const badPath = await failure(
      kit.as("bob").updateWorkItem({ workItem: { id }, updateMask: { paths: ["state"] } }),
    );
    expect(badPath.code).toBe(Code.INVALID_ARGUMENT);
    const noMask = await failure(kit.as("bob").updateWorkItem({ workItem: { id, title: "x" } }));
    expect(noMask.code).toBe(Code.INVALID_ARGUMENT);
    const events = await kit.eventsOf(WorkItemUpdatedSchema, 1, (e) => e.workItem?.id === id);
    expect(events[0]?.updateMask?.paths).toEqual(["title"]);
  });

  it("refuses kind changes after APPROVED and edits of finished items", async () => {
    const id =
      (await kit.as("alice").createWorkItem({ projectId: kit.project, workItem: build() })).workItem?.id ??
      "";
    await kit.as("scheduler").transitionWorkItem({ workItemId: id, toState: WorkItemState.QUEUED });
    const kind = await failure(
      kit
        .as("alice")
        .updateWorkItem({ workItem: { id, kind: WorkItemKind.TEST }, updateMask: { paths: ["kind"] } }),
    );
    expect(kind.code).toBe(Code.FAILED_PRECONDITION);
    expect(kind.reason).toBe("WRONG_STATE");
    await kit.as("alice").cancelWorkItem({ workItemId: id, reason: "no longer needed" });
    const done = await failure(
      kit.as("alice").updateWorkItem({ workItem: { id, title: "x" }, updateMask: { paths: ["title"] } }),
    );
    expect(done.reason).toBe("WRONG_STATE");
  });
});

describe("delete (internal)", () => {
  it("is for services only, tolerates missing items when asked, and emits WorkItemDeleted", async () => {
    const id =
      (await kit.as("alice").createWorkItem({ projectId: kit.project, workItem: build() })).workItem?.id ??
      "";
    expect((await failure(kit.as("owner").deleteWorkItem({ workItemId: id }))).code).toBe(
      Code.PERMISSION_DENIED,
    );
    await kit.as("scheduler").deleteWorkItem({ workItemId: id, reason: "saga compensated" });
    expect((await failure(kit.as("alice").getWorkItem({ workItemId: id }))).code).toBe(Code.NOT_FOUND);
    await kit.as("scheduler").deleteWorkItem({ workItemId: id, allowMissing: true });
    expect((await failure(kit.as("scheduler").deleteWorkItem({ workItemId: id }))).code).toBe(Code.NOT_FOUND);
    const events = await kit.eventsOf(WorkItemDeletedSchema, 1, (e) => e.workItemId === id);
    expect(events[0]?.reason).toBe("saga compensated");
  });
});
