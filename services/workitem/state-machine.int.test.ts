import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ScheduleWorkItemSchema } from "../../gen/codex/events/v1/scheduler_events_pb.js";
import { WorkItemStateChangedSchema } from "../../gen/codex/events/v1/workitem_events_pb.js";
import { ApprovalState } from "../../gen/codex/workitem/v1/approval_pb.js";
import { WorkItemState as S, WorkItemKind } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Code } from "../../mesh/errors.js";
import { unpackPayload } from "../../mesh/events/envelope.js";
import { failure, type Kit, startKit } from "./test-kit.js";

let kit: Kit;
beforeAll(async () => {
  kit = await startKit();
});
afterAll(async () => kit?.cleanup());

async function newItem(reviewRequired = false): Promise<string> {
  const res = await kit.as("alice").createWorkItem({
    projectId: kit.project,
    workItem: { title: "lifecycle", kind: WorkItemKind.TEST, reviewRequired },
  });
  return res.workItem?.id ?? "";
}

/** The WorkItemStateChanged events of one item, in stream order, once the outbox has drained. */
async function changesOf(id: string) {
  await kit.settled();
  return (await kit.events())
    .map((e) => unpackPayload(e.envelope, WorkItemStateChangedSchema))
    .filter((p) => p?.workItemId === id);
}

describe("state machine", () => {
  it("walks APPROVED → QUEUED → IN_PROGRESS → REVIEW → DONE, one WorkItemStateChanged per move", async () => {
    const id = await newItem(true);
    await kit
      .as("scheduler")
      .transitionWorkItem({ workItemId: id, toState: S.QUEUED, reason: "task scheduled" });
    await kit
      .as("scheduler")
      .transitionWorkItem({ workItemId: id, toState: S.IN_PROGRESS, reason: "run started" });
    await kit
      .as("scheduler")
      .transitionWorkItem({ workItemId: id, toState: S.REVIEW, reason: "run succeeded" });
    const done = await kit
      .as("bob")
      .transitionWorkItem({ workItemId: id, toState: S.DONE, reason: "looks good" });
    expect(done.workItem?.state).toBe(S.DONE);
    expect(done.workItem?.stateReason).toBe("looks good");
    const changes = await changesOf(id);
    expect(changes.map((c) => [c?.previousState, c?.newState, c?.changedBy, c?.reason])).toEqual([
      [S.APPROVED, S.QUEUED, "service:scheduler", "task scheduled"],
      [S.QUEUED, S.IN_PROGRESS, "service:scheduler", "run started"],
      [S.IN_PROGRESS, S.REVIEW, "service:scheduler", "run succeeded"],
      [S.REVIEW, S.DONE, "bob", "looks good"],
    ]);
    expect(changes.every((c) => c?.projectId === kit.project && c.timestamp !== undefined)).toBe(true);
  });

  it("refuses an illegal move with FAILED_PRECONDITION naming the current state and the allowed targets", async () => {
    const id = await newItem();
    const f = await failure(kit.as("alice").transitionWorkItem({ workItemId: id, toState: S.DONE }));
    expect(f.code).toBe(Code.FAILED_PRECONDITION);
    expect(f.reason).toBe("INVALID_TRANSITION");
    expect(f.err.message).toContain("APPROVED");
    expect(f.err.findDetail(ErrorInfoSchema)?.metadata).toMatchObject({
      current_state: "APPROVED",
      to_state: "DONE",
      allowed: "QUEUED,CANCELLED,BLOCKED",
    });
    expect(await changesOf(id)).toHaveLength(0);
  });

  it("reserves scheduler moves to services and wants a reason for BLOCKED, FAILED and CANCELLED", async () => {
    const id = await newItem();
    const sys = await failure(kit.as("alice").transitionWorkItem({ workItemId: id, toState: S.QUEUED }));
    expect(sys.code).toBe(Code.PERMISSION_DENIED);
    expect(sys.reason).toBe("SYSTEM_TRANSITION");
    const noReason = await failure(
      kit.as("alice").transitionWorkItem({ workItemId: id, toState: S.BLOCKED }),
    );
    expect(noReason.code).toBe(Code.INVALID_ARGUMENT);
    const viewer = await failure(
      kit.as("viewer").transitionWorkItem({ workItemId: id, toState: S.BLOCKED, reason: "x" }),
    );
    expect(viewer.code).toBe(Code.PERMISSION_DENIED);
  });

  it("treats a move to the current state as a successful no-op", async () => {
    const id = await newItem();
    const res = await kit.as("alice").transitionWorkItem({ workItemId: id, toState: S.APPROVED });
    expect(res.workItem?.state).toBe(S.APPROVED);
    expect(await changesOf(id)).toHaveLength(0);
  });

  it("resumes a BLOCKED item only where it was blocked (IN_PROGRESS resumes as QUEUED)", async () => {
    const id = await newItem();
    await kit.as("scheduler").transitionWorkItem({ workItemId: id, toState: S.QUEUED });
    await kit.as("scheduler").transitionWorkItem({ workItemId: id, toState: S.IN_PROGRESS });
    await kit
      .as("alice")
      .transitionWorkItem({ workItemId: id, toState: S.BLOCKED, reason: "waiting for creds" });
    const wrong = await failure(kit.as("alice").transitionWorkItem({ workItemId: id, toState: S.APPROVED }));
    expect(wrong.reason).toBe("INVALID_TRANSITION");
    expect(wrong.err.findDetail(ErrorInfoSchema)?.metadata.allowed).toBe("QUEUED,CANCELLED,FAILED");
    const resumed = await kit.as("alice").transitionWorkItem({ workItemId: id, toState: S.QUEUED });
    expect(resumed.workItem?.state).toBe(S.QUEUED);
  });

  it("lets the scheduler fail a BLOCKED item whose dependency failed, and a person retry it", async () => {
    const id = await newItem();
    await kit
      .as("alice")
      .transitionWorkItem({ workItemId: id, toState: S.BLOCKED, reason: "dependency failed" });
    const failed = await kit
      .as("scheduler")
      .transitionWorkItem({ workItemId: id, toState: S.FAILED, reason: "dependency abc failed" });
    expect(failed.workItem?.state).toBe(S.FAILED);
    await kit.as("alice").transitionWorkItem({ workItemId: id, toState: S.QUEUED, reason: "retry" });
    await kit.settled();
    const schedule = (await kit.commands())
      .filter((e) => e.subject === `${kit.svc.prefix}.commands.scheduler.ScheduleWorkItem`)
      .map((e) => unpackPayload(e.envelope, ScheduleWorkItemSchema))
      .filter((c) => c?.workItemId === id);
    expect(schedule.map((c) => c?.scheduledBy)).toEqual(["alice"]);
    const changes = await changesOf(id);
    expect(changes.map((c) => c?.newState)).toEqual([S.BLOCKED, S.FAILED, S.QUEUED]);
  });

  it("asks the scheduler for no run when it made the move itself (it already has the task)", async () => {
    const id = await newItem(true);
    const as = kit.as("scheduler");
    await as.transitionWorkItem({ workItemId: id, toState: S.QUEUED });
    await as.transitionWorkItem({ workItemId: id, toState: S.IN_PROGRESS });
    await as.transitionWorkItem({ workItemId: id, toState: S.FAILED, reason: "run failed" });
    // RequeueTask of the FAILED task (or ScheduleWorkItem of the FAILED item) reports its task.
    await as.transitionWorkItem({ workItemId: id, toState: S.QUEUED, reason: "task requeued" });
    await as.transitionWorkItem({ workItemId: id, toState: S.IN_PROGRESS });
    await as.transitionWorkItem({ workItemId: id, toState: S.REVIEW });
    // A run of a task scheduled while the item was in REVIEW starts.
    await as.transitionWorkItem({ workItemId: id, toState: S.IN_PROGRESS, reason: "run started" });
    await kit.settled();
    const schedule = (await kit.commands())
      .filter((e) => e.subject === `${kit.svc.prefix}.commands.scheduler.ScheduleWorkItem`)
      .map((e) => unpackPayload(e.envelope, ScheduleWorkItemSchema))
      .filter((c) => c?.workItemId === id);
    expect(schedule).toEqual([]);
    const changes = await changesOf(id);
    expect(changes.map((c) => c?.newState)).toEqual([
      S.QUEUED,
      S.IN_PROGRESS,
      S.FAILED,
      S.QUEUED,
      S.IN_PROGRESS,
      S.REVIEW,
      S.IN_PROGRESS,
    ]);
  });
});

describe("cancel", () => {
  it("cancels from any open state, is a no-op when already cancelled, and refuses DONE items", async () => {
    const risky = await kit.as("alice").createWorkItem({
      projectId: kit.project,
      workItem: { title: "apply", kind: WorkItemKind.APPLY, environment: "prod" },
    });
    const id = risky.workItem?.id ?? "";
    const cancelled = await kit.as("bob").cancelWorkItem({ workItemId: id, reason: "not needed" });
    expect(cancelled.workItem?.state).toBe(S.CANCELLED);
    const again = await kit.as("bob").cancelWorkItem({ workItemId: id });
    expect(again.workItem?.etag).toBe(cancelled.workItem?.etag);
    const request = await kit
      .as("bob")
      .getApprovalRequest({ approvalRequestId: risky.workItem?.approvalRequestId ?? "" });
    expect(request.approvalRequest?.state).toBe(ApprovalState.CANCELLED);
    const changes = await changesOf(id);
    expect(changes.map((c) => [c?.previousState, c?.newState, c?.reason])).toEqual([
      [S.PROPOSED, S.CANCELLED, "not needed"],
    ]);

    const doneId = await newItem();
    await kit.as("scheduler").transitionWorkItem({ workItemId: doneId, toState: S.QUEUED });
    await kit.as("scheduler").transitionWorkItem({ workItemId: doneId, toState: S.IN_PROGRESS });
    await kit.as("scheduler").transitionWorkItem({ workItemId: doneId, toState: S.DONE });
    const f = await failure(kit.as("bob").cancelWorkItem({ workItemId: doneId }));
    expect(f.reason).toBe("INVALID_TRANSITION");
    expect(f.err.message).toContain("DONE");
  });

  it("honours etags and request ids", async () => {
    const id = await newItem();
    const item = (await kit.as("alice").getWorkItem({ workItemId: id })).workItem;
    await kit
      .as("alice")
      .updateWorkItem({ workItem: { id, title: "renamed" }, updateMask: { paths: ["title"] } });
    const stale = await failure(kit.as("alice").cancelWorkItem({ workItemId: id, etag: item?.etag ?? "" }));
    expect(stale.code).toBe(Code.ABORTED);
    const requestId = `cancel-${id}`;
    const first = await kit.as("alice").cancelWorkItem({ workItemId: id, reason: "r", requestId });
    const retry = await kit.as("alice").cancelWorkItem({ workItemId: id, reason: "r", requestId });
    expect(retry.workItem?.etag).toBe(first.workItem?.etag);
    expect(await changesOf(id)).toHaveLength(1);
  });
});
