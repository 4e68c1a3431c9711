import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import {
  ApprovalDecisionRecordedSchema,
  ApprovalGrantedSchema,
  ApprovalRejectedSchema,
} from "../../../gen/codex/events/v1/workitem_events_pb.js";
import { ApprovalDecision_Decision } from "../../../gen/codex/workitem/v1/approval_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { actorId, roleIn } from "../authz.js";
import {
  AlreadyDecidedError,
  ApprovalError,
  approvalCount,
  type DecisionKind,
  DuplicateDecisionError,
  decide,
  ExpiredError,
  NotEntitledError,
  ReasonRequiredError,
  SelfApprovalError,
} from "../domain/approval.js";
import { failedPrecondition, invalidArgument, permissionDenied, wrongState } from "../errors.js";
import {
  type ApprovalRow,
  bumpApproval,
  getApproval,
  insertDecision,
  setApprovalState,
} from "../store/approvals.js";
import type { WorkItemRow } from "../store/work-items.js";
import type { Deps } from "./deps.js";
import { saveReassessed } from "./gate.js";
import { applyTransition } from "./transitions.js";

/** Maps the domain's refusals to the contract's statuses and reasons. */
function refusal(err: ApprovalError, request: ApprovalRow): Error {
  const subject = `approval_requests/${request.id}`;
  if (err instanceof SelfApprovalError) return permissionDenied(err.message, "SELF_APPROVAL");
  if (err instanceof NotEntitledError) {
    return permissionDenied(err.message, "NOT_AN_APPROVER", { approver_roles: err.allowedRoles.join(",") });
  }
  if (err instanceof DuplicateDecisionError)
    return failedPrecondition("ALREADY_DECIDED", subject, err.message);
  if (err instanceof ExpiredError) return wrongState(subject, "EXPIRED", err.message);
  if (err instanceof AlreadyDecidedError) return wrongState(subject, err.state, err.message);
  if (err instanceof ReasonRequiredError)
    return invalidArgument(err.message, [{ field: "reason", description: "is required" }]);
  return wrongState(subject, request.state, err.message);
}

/**
 * Records one approver's decision on a request whose item and request rows the caller has
 * locked (item first, then request, the order every writer uses). Each decision is stored
 * once (primary key per approver) and the threshold is crossed once, because decisions on a
 * request are serialized by its row lock. Emits ApprovalDecisionRecorded, then
 * ApprovalGranted or ApprovalRejected when the request resolves, and moves a PROPOSED item to
 * APPROVED when granted.
 */
export async function recordDecision(
  tx: pg.PoolClient,
  deps: Deps,
  caller: Principal,
  item: WorkItemRow,
  request: ApprovalRow,
  kind: DecisionKind,
  reason: string,
): Promise<ApprovalRow> {
  const at = deps.now();
  const approver = actorId(caller);
  let outcome: ReturnType<typeof decide>;
  try {
    outcome = decide(
      { ...request, requestedBy: request.onBehalfOf },
      { approver, decision: kind, reason },
      at,
      roleIn(caller, request.projectId),
      request.approverRoles,
    );
  } catch (err) {
    if (err instanceof ApprovalError) throw refusal(err, request);
    throw err;
  }
  // decide() also refuses the literal requester; check it separately for requested_by.
  if (kind === "APPROVE" && approver === request.requestedBy) {
    throw permissionDenied(`${approver} requested this approval and cannot approve it`, "SELF_APPROVAL");
  }
  if (!(await insertDecision(tx, request.id, outcome.decision))) {
    throw failedPrecondition(
      "ALREADY_DECIDED",
      `approval_requests/${request.id}`,
      `${approver} already decided`,
    );
  }
  if (outcome.state === "PENDING") await bumpApproval(tx, request.id);
  else await setApprovalState(tx, request.id, outcome.state, at);
  const decisions = [...request.decisions, outcome.decision];
  const count = approvalCount(decisions);
  const base = {
    aggregateType: "approval_request" as const,
    aggregateId: request.id,
    projectId: request.projectId,
    at,
  };
  await deps.events.stage(tx, caller, {
    ...base,
    schema: ApprovalDecisionRecordedSchema,
    payload: create(ApprovalDecisionRecordedSchema, {
      approvalRequestId: request.id,
      workItemId: request.workItemId,
      decision: {
        approver,
        decision: ApprovalDecision_Decision[kind],
        reason: outcome.decision.reason,
        decideTime: timestampFromDate(at),
      },
      approvalsCount: count,
      requiredApprovals: request.requiredApprovals,
    }),
    aggregateVersion: request.version + 1,
  });
  const latest = item.approvalRequestId === request.id;
  if (outcome.state === "APPROVED") {
    await deps.events.stage(tx, caller, {
      ...base,
      schema: ApprovalGrantedSchema,
      payload: create(ApprovalGrantedSchema, {
        approvalRequestId: request.id,
        workItemId: request.workItemId,
        recipeVersion: request.recipeVersion,
        approvers: decisions.filter((d) => d.decision === "APPROVE").map((d) => d.approver),
      }),
      aggregateVersion: request.version + 1,
    });
    if (latest) {
      item.approvalStatus = "APPROVED";
      const saved = await saveReassessed(tx, deps, caller, item, at);
      if (saved.state === "PROPOSED")
        await applyTransition(tx, deps, caller, saved, "APPROVED", "approval granted", at);
    }
  } else if (outcome.state === "REJECTED") {
    await deps.events.stage(tx, caller, {
      ...base,
      schema: ApprovalRejectedSchema,
      payload: create(ApprovalRejectedSchema, {
        approvalRequestId: request.id,
        workItemId: request.workItemId,
        rejectedBy: approver,
        reason: outcome.decision.reason,
      }),
      aggregateVersion: request.version + 1,
    });
    if (latest) {
      item.approvalStatus = "REJECTED";
      await saveReassessed(tx, deps, caller, item, at);
    }
  }
  const after = await getApproval(tx, request.id);
  if (!after) throw new Error(`approval request ${request.id} vanished while locked`);
  return after;
}
