import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ApprovalDecisionRecordedSchema,
  ApprovalExpiredSchema,
  ApprovalGrantedSchema,
  ApprovalRejectedSchema,
  WorkItemStateChangedSchema,
} from "../../gen/codex/events/v1/workitem_events_pb.js";
import { ApprovalState } from "../../gen/codex/workitem/v1/approval_pb.js";
import { ApprovalStatus, WorkItemKind, WorkItemState } from "../../gen/codex/workitem/v1/work_item_pb.js";
import { Code } from "../../mesh/errors.js";
import { unpackPayload } from "../../mesh/events/envelope.js";
import { eventually } from "../../mesh/nats/testing.js";
import { failure, type Kit, startKit } from "./test-kit.js";

let kit: Kit;
beforeAll(async () => {
  kit = await startKit();
});
afterAll(async () => kit?.cleanup());

/** A production deploy created by alice: risky, PROPOSED, with a PENDING request. */
async function riskyItem(title = "deploy web"): Promise<{ id: string; requestId: string }> {
  const res = await kit.as("alice").createWorkItem({
    projectId: kit.project,
    workItem: { title, kind: WorkItemKind.DEPLOY, environment: "production" },
  });
  return { id: res.workItem?.id ?? "", requestId: res.workItem?.approvalRequestId ?? "" };
}

/** Payloads of one event type about one request, read once the outbox has drained. */
async function eventsAbout<D extends DescMessage>(schema: D, requestId: string): Promise<MessageShape<D>[]> {
  await kit.settled();
  return (await kit.events())
    .map((e) => unpackPayload(e.envelope, schema))
    .filter(
      (p): p is MessageShape<D> =>
        (p as { approvalRequestId?: string } | undefined)?.approvalRequestId === requestId,
    );
}

describe("approvals", () => {
  it("gates a risky item: no approval → no APPROVED state; four eyes; the grant moves it to APPROVED", async () => {
    const { id, requestId } = await riskyItem();
    const gated = await failure(
      kit.as("alice").transitionWorkItem({ workItemId: id, toState: WorkItemState.APPROVED }),
    );
    expect(gated.code).toBe(Code.FAILED_PRECONDITION);
    expect(gated.reason).toBe("APPROVAL_REQUIRED");

    const self = await failure(kit.as("alice").approveRequest({ approvalRequestId: requestId }));
    expect([self.code, self.reason]).toEqual([Code.PERMISSION_DENIED, "SELF_APPROVAL"]);
    const viewer = await failure(kit.as("viewer").approveRequest({ approvalRequestId: requestId }));
    expect([viewer.code, viewer.reason]).toEqual([Code.PERMISSION_DENIED, "NOT_AN_APPROVER"]);
    const service = await failure(kit.as("scheduler").approveRequest({ approvalRequestId: requestId }));
    expect(service.reason).toBe("NOT_AN_APPROVER");
    const outsider = await failure(kit.as("outsider").approveRequest({ approvalRequestId: requestId }));
    expect(outsider.code).toBe(Code.NOT_FOUND);

    const granted = await kit
      .as("bob")
      .approveRequest({ approvalRequestId: requestId, reason: "reviewed the plan" });
    expect(granted.approvalRequest?.state).toBe(ApprovalState.APPROVED);
    expect(granted.approvalRequest?.decisions.map((d) => [d.approver, d.reason])).toEqual([
      ["bob", "reviewed the plan"],
    ]);
    const item = (await kit.as("alice").getWorkItem({ workItemId: id })).workItem;
    expect(item?.state).toBe(WorkItemState.APPROVED);
    expect(item?.approvalStatus).toBe(ApprovalStatus.APPROVED);
    const again = await failure(kit.as("carol").approveRequest({ approvalRequestId: requestId }));
    expect(again.reason).toBe("WRONG_STATE");

    expect(await eventsAbout(ApprovalGrantedSchema, requestId)).toHaveLength(1);
    const changes = (await kit.events())
      .map((e) => unpackPayload(e.envelope, WorkItemStateChangedSchema))
      .filter((c) => c?.workItemId === id);
    expect(changes.map((c) => [c?.previousState, c?.newState, c?.changedBy])).toEqual([
      [WorkItemState.PROPOSED, WorkItemState.APPROVED, "bob"],
    ]);
    await kit.as("scheduler").transitionWorkItem({ workItemId: id, toState: WorkItemState.QUEUED });
  });

  it("counts two approvers acting at once exactly once each and crosses the threshold once", async () => {
    await kit.as("owner").setApprovalPolicy({ policy: { projectId: kit.project, requiredApprovals: 2 } });
    try {
      const { id, requestId } = await riskyItem("two approvers");
      const request = (await kit.as("bob").getApprovalRequest({ approvalRequestId: requestId }))
        .approvalRequest;
      expect(request?.requiredApprovals).toBe(2);
      const [b, c] = await Promise.all([
        kit.as("bob").approveRequest({ approvalRequestId: requestId }),
        kit.as("carol").approveRequest({ approvalRequestId: requestId }),
      ]);
      const states = [b.approvalRequest?.state, c.approvalRequest?.state];
      expect(states.filter((s) => s === ApprovalState.APPROVED)).toHaveLength(1);
      expect(states.filter((s) => s === ApprovalState.PENDING)).toHaveLength(1);
      const final = (await kit.as("bob").getApprovalRequest({ approvalRequestId: requestId }))
        .approvalRequest;
      expect(final?.decisions.map((d) => d.approver).sort()).toEqual(["bob", "carol"]);
      expect(await eventsAbout(ApprovalDecisionRecordedSchema, requestId)).toHaveLength(2);
      expect(await eventsAbout(ApprovalGrantedSchema, requestId)).toHaveLength(1);
      expect((await kit.as("bob").getWorkItem({ workItemId: id })).workItem?.state).toBe(
        WorkItemState.APPROVED,
      );
    } finally {
      await kit.as("owner").setApprovalPolicy({ policy: { projectId: kit.project, requiredApprovals: 1 } });
    }
  });

  it("records one decision when the same approver acts twice at once, and one grant when two race for the last slot", async () => {
    const dup = await riskyItem("duplicate");
    const results = await Promise.allSettled([
      kit.as("bob").rejectRequest({ approvalRequestId: dup.requestId, reason: "no" }),
      kit.as("bob").rejectRequest({ approvalRequestId: dup.requestId, reason: "no" }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await eventsAbout(ApprovalDecisionRecordedSchema, dup.requestId)).toHaveLength(1);
    expect(await eventsAbout(ApprovalRejectedSchema, dup.requestId)).toHaveLength(1);

    const race = await riskyItem("race");
    const raced = await Promise.allSettled([
      kit.as("bob").approveRequest({ approvalRequestId: race.requestId }),
      kit.as("carol").approveRequest({ approvalRequestId: race.requestId }),
      kit.as("owner").approveRequest({ approvalRequestId: race.requestId }),
    ]);
    expect(raced.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await eventsAbout(ApprovalGrantedSchema, race.requestId)).toHaveLength(1);
    expect(await eventsAbout(ApprovalDecisionRecordedSchema, race.requestId)).toHaveLength(1);
  });

  it("rejects with a reason; a new request can then be asked for, stricter than the policy if wanted", async () => {
    const { id, requestId } = await riskyItem("rejected");
    expect((await failure(kit.as("bob").rejectRequest({ approvalRequestId: requestId }))).code).toBe(
      Code.INVALID_ARGUMENT,
    );
    const rejected = await kit
      .as("bob")
      .rejectRequest({ approvalRequestId: requestId, reason: "window closed" });
    expect(rejected.approvalRequest?.state).toBe(ApprovalState.REJECTED);
    expect((await kit.as("alice").getWorkItem({ workItemId: id })).workItem?.approvalStatus).toBe(
      ApprovalStatus.REJECTED,
    );
    const [event] = await eventsAbout(ApprovalRejectedSchema, requestId);
    expect([event?.rejectedBy, event?.reason]).toEqual(["bob", "window closed"]);

    const tooLoose = await failure(
      kit.as("alice").requestApproval({ workItemId: id, reason: "retry", ttl: { seconds: 3_000_000n } }),
    );
    expect(tooLoose.code).toBe(Code.INVALID_ARGUMENT);
    const reopened = await kit.as("alice").requestApproval({
      workItemId: id,
      reason: "new window",
      requiredApprovals: 2,
      ttl: { seconds: 600n },
    });
    expect(reopened.approvalRequest?.state).toBe(ApprovalState.PENDING);
    expect(reopened.approvalRequest?.requiredApprovals).toBe(2);
    expect(reopened.approvalRequest?.requestedBy).toBe("alice");
    const open = await failure(kit.as("alice").requestApproval({ workItemId: id, reason: "again" }));
    expect(open.reason).toBe("WRONG_STATE");
    const inbox = await kit.as("bob").listApprovalRequests({ projectId: kit.project, actionableByMe: true });
    expect(inbox.approvalRequests.map((r) => r.id)).toContain(reopened.approvalRequest?.id);
    const mine = await kit.as("alice").listApprovalRequests({ workItemId: id, actionableByMe: true });
    expect(mine.approvalRequests).toHaveLength(0);
    const history = await kit.as("viewer").listApprovalRequests({ workItemId: id });
    expect(history.approvalRequests.map((r) => r.state)).toEqual([
      ApprovalState.PENDING,
      ApprovalState.REJECTED,
    ]);
  });

  it("expires a request past its deadline once, and refuses decisions on it", async () => {
    const { id, requestId } = await riskyItem("expiring");
    await kit.svc.running.host.pool.query(
      "UPDATE approval_requests SET expire_time = now() - interval '1 second' WHERE id = $1",
      [requestId],
    );
    const late = await failure(kit.as("bob").approveRequest({ approvalRequestId: requestId }));
    expect([late.code, late.reason]).toEqual([Code.FAILED_PRECONDITION, "WRONG_STATE"]);
    await eventually("the sweeper to expire the request", async () => {
      const r = await kit.as("bob").getApprovalRequest({ approvalRequestId: requestId });
      return r.approvalRequest?.state === ApprovalState.EXPIRED;
    });
    expect((await kit.as("bob").getWorkItem({ workItemId: id })).workItem?.approvalStatus).toBe(
      ApprovalStatus.EXPIRED,
    );
    await new Promise((r) => setTimeout(r, 300)); // a few more sweeps
    expect(await eventsAbout(ApprovalExpiredSchema, requestId)).toHaveLength(1);
  });
});
