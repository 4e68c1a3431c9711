import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import { ScheduleWorkItemSchema } from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import { WorkItemStateChangedSchema } from "../../../gen/codex/events/v1/workitem_events_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { actorId, isService } from "../authz.js";
import { stateToProto } from "../convert.js";
import {
  allowedTransitions,
  canTransition,
  resumeStateAfterBlock,
  type WorkItemState,
} from "../domain/state-machine.js";
import { failedPrecondition, permissionDenied } from "../errors.js";
import { pendingApprovalOf } from "../store/approvals.js";
import { saveWorkItem, type WorkItemRow } from "../store/work-items.js";
import type { Deps } from "./deps.js";
import { cancelApproval } from "./gate.js";

/**
 * Moves taken only by the orchestrator's services in reaction to the scheduler and agent
 * manager (the contract's "sys" edges); people asking for them get SYSTEM_TRANSITION.
 */
const SYSTEM_MOVES = new Set([
  "APPROVED>QUEUED",
  "QUEUED>IN_PROGRESS",
  "QUEUED>APPROVED",
  "QUEUED>FAILED",
  "IN_PROGRESS>REVIEW",
  "IN_PROGRESS>DONE",
  "IN_PROGRESS>QUEUED",
  "IN_PROGRESS>FAILED",
  "BLOCKED>FAILED",
]);

/** Moves that need a new run, so the scheduler is asked to schedule the item again. */
const RESCHEDULING_MOVES = new Set(["REVIEW>IN_PROGRESS", "FAILED>QUEUED"]);

/** The service that schedules runs: the ScheduleWorkItem command goes to it. */
const SCHEDULER = "scheduler";

/**
 * Whether `from -> to`, made by `actor`, needs the scheduler to create a run. Never when the
 * scheduler made the move itself: it reports a task it already has (FAILED -> QUEUED after
 * RequeueTask of the FAILED task or ScheduleWorkItem of the FAILED item, REVIEW -> IN_PROGRESS
 * when a run of its task starts). Asking it again would be refused as ALREADY_SCHEDULED while that
 * task is live (a ScheduleWorkItemRejected nobody can act on), or, read after the task ended,
 * schedule a second, unasked-for run.
 */
export function needsNewRun(from: WorkItemState, to: WorkItemState, actor: Principal): boolean {
  if (!RESCHEDULING_MOVES.has(`${from}>${to}`)) return false;
  return !(isService(actor) && actor.id === SCHEDULER);
}

/** The states an item can move to now. A BLOCKED item may only resume where it was blocked. */
export function allowedFrom(item: Pick<WorkItemRow, "state" | "blockedFrom">): WorkItemState[] {
  const all = allowedTransitions(item.state);
  if (item.state !== "BLOCKED") return [...all];
  const resume = item.blockedFrom ? resumeStateAfterBlock(item.blockedFrom) : undefined;
  return all.filter((s) => s === resume || (s !== "PROPOSED" && s !== "APPROVED" && s !== "QUEUED"));
}

/** Whether reaching `to` from `from` lets risky work move towards execution. */
function needsApproval(from: WorkItemState, to: WorkItemState): boolean {
  return to === "QUEUED" || to === "IN_PROGRESS" || (from === "PROPOSED" && to === "APPROVED");
}

/**
 * Refuses a move that the state machine, the caller's kind or the approval gate forbids,
 * with the error the contract names (INVALID_TRANSITION naming the current state,
 * SYSTEM_TRANSITION, APPROVAL_REQUIRED).
 */
export function checkTransition(item: WorkItemRow, to: WorkItemState, caller: Principal): void {
  const allowed = allowedFrom(item);
  const subject = `work_items/${item.id}`;
  if (!allowed.includes(to) || !canTransition(item.state, to)) {
    const options = allowed.length === 0 ? `${item.state} is terminal` : `allowed: ${allowed.join(", ")}`;
    throw failedPrecondition(
      "INVALID_TRANSITION",
      subject,
      `work item is ${item.state} and cannot move to ${to} (${options})`,
      { current_state: item.state, to_state: to, allowed: allowed.join(",") },
    );
  }
  if (SYSTEM_MOVES.has(`${item.state}>${to}`) && !isService(caller)) {
    throw permissionDenied(
      `${item.state} -> ${to} is taken by the orchestrator's services only`,
      "SYSTEM_TRANSITION",
      {
        current_state: item.state,
        to_state: to,
      },
    );
  }
  if (needsApproval(item.state, to) && item.risky && item.approvalStatus !== "APPROVED") {
    throw failedPrecondition(
      "APPROVAL_REQUIRED",
      subject,
      `work item is risky (${item.riskReasons.join("; ")}) and its approval is ${item.approvalStatus}; it cannot move to ${to}`,
      { current_state: item.state, approval_status: item.approvalStatus },
    );
  }
}

/**
 * Applies a checked move: saves the item, emits WorkItemStateChanged (exactly one per
 * change, in the same transaction), cancels an open approval of a cancelled item, and asks
 * the scheduler for a new run where the move needs one (see {@link needsNewRun}).
 */
export async function applyTransition(
  tx: pg.PoolClient,
  deps: Deps,
  actor: Principal,
  item: WorkItemRow,
  to: WorkItemState,
  reason: string,
  at: Date,
): Promise<WorkItemRow> {
  const from = item.state;
  item.blockedFrom = to === "BLOCKED" ? from : null;
  item.state = to;
  item.stateReason = reason;
  item.stateChangeTime = at;
  item.updateTime = at;
  if (to === "CANCELLED") {
    const pending = await pendingApprovalOf(tx, item.id);
    if (pending) await cancelApproval(tx, deps, actor, pending, "work item cancelled", at);
  }
  const saved = await saveWorkItem(tx, item);
  await deps.events.stage(tx, actor, {
    schema: WorkItemStateChangedSchema,
    payload: create(WorkItemStateChangedSchema, {
      workItemId: saved.id,
      previousState: stateToProto(from),
      newState: stateToProto(to),
      changedBy: actorId(actor),
      reason,
      timestamp: timestampFromDate(at),
      projectId: saved.projectId,
      taskId: saved.taskId,
    }),
    aggregateType: "work_item",
    aggregateId: saved.id,
    aggregateVersion: saved.version,
    projectId: saved.projectId,
    at,
  });
  if (needsNewRun(from, to, actor)) {
    await deps.events.command(tx, actor, SCHEDULER, {
      schema: ScheduleWorkItemSchema,
      payload: create(ScheduleWorkItemSchema, {
        workItemId: saved.id,
        scheduledBy: actorId(actor),
        requestId: `${saved.id}:v${saved.version}`,
      }),
      aggregateType: "work_item",
      aggregateId: saved.id,
      aggregateVersion: saved.version,
      projectId: saved.projectId,
      at,
    });
  }
  return saved;
}
