import { create } from "@bufbuild/protobuf";
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { TaskDispatchedSchema } from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import type { ToolRecipe } from "../../../gen/codex/workitem/v1/recipe_pb.js";
import { ApprovalStatus, type WorkItem, WorkItemState } from "../../../gen/codex/workitem/v1/work_item_pb.js";
import { QuotaFailureSchema } from "../../../gen/google/rpc/error_details_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { asScheduler, type Core, transact } from "../core.js";
import { isRetryable } from "../errors.js";
import { SCHEDULER_PRINCIPAL, stage } from "../events/publish.js";
import type { DispatchOutcome } from "../metrics.js";
import { enqueueEffects } from "../store/effects.js";
import { getTask, type TaskRow } from "../store/tasks.js";
import { cancelTask } from "./cancel.js";
import { applyRunOutcome, type RunResult } from "./outcome.js";

const cause = { principal: SCHEDULER_PRINCIPAL };
const FINISHED: Partial<Record<RunState, RunResult>> = {
  [RunState.SUCCEEDED]: "SUCCEEDED",
  [RunState.FAILED]: "FAILED",
  [RunState.CANCELLED]: "CANCELLED",
  [RunState.LOST]: "LOST",
};

/** Why a claimed task goes back to WAITING instead of out to an agent. */
type Setback =
  | { kind: "approval" }
  | { kind: "quota"; until: Date; detail: string; limit: string }
  | { kind: "error"; until: Date; error: string; reservationHeld: boolean };

/**
 * Hands one claimed task to the agent manager: reads the work item (approval gate and the
 * snapshot the agent executes), reserves a run slot of the project's quota, enqueues the run,
 * then records it. Every downstream call is idempotent for a (task, attempt): the reservation
 * key and EnqueueRun's request id derive from them, so a claim retried after a crash creates
 * nothing twice.
 */
export async function dispatchOne(core: Core, t: TaskRow, token: string): Promise<void> {
  const started = performance.now();
  const outcome = await dispatch(core, t, token);
  core.metrics.dispatched(outcome, (performance.now() - started) / 1000);
}

async function dispatch(core: Core, t: TaskRow, token: string): Promise<DispatchOutcome> {
  const timeoutMs = core.settings.downstreamTimeoutMs;
  const { workItems, project, agents } = core.downstream;
  let reserved = false;
  try {
    const wi = (await asScheduler(() => workItems.getWorkItem({ workItemId: t.workItemId }, { timeoutMs })))
      .workItem;
    if (!wi || wi.state === WorkItemState.CANCELLED || wi.state === WorkItemState.DONE) {
      await cancelClaimed(core, t, token, `work item is ${wi ? WorkItemState[wi.state] : "gone"}`);
      return "cancelled";
    }
    if (needsApproval(wi)) {
      await setBack(core, t, token, { kind: "approval" });
      return "approval";
    }
    let recipe: ToolRecipe | undefined;
    if (wi.recipeVersion > 0) {
      const res = await asScheduler(() =>
        workItems.getToolRecipe({ workItemId: t.workItemId, version: wi.recipeVersion }, { timeoutMs }),
      );
      recipe = res.recipe;
    }
    await asScheduler(() =>
      project.reserveRunSlot(
        { projectId: t.projectId, reservationKey: t.reservationKey, workItemId: t.workItemId },
        { timeoutMs },
      ),
    );
    reserved = true;
    const { run } = await asScheduler(() =>
      agents.enqueueRun(
        {
          requestId: `${t.id}:${t.attempt}`,
          taskId: t.id,
          workItemId: t.workItemId,
          projectId: t.projectId,
          attempt: t.attempt,
          priority: t.priority,
          agentSelector: t.agentSelector,
          workItem: {
            workItemId: wi.id,
            projectId: wi.projectId,
            title: wi.title,
            description: wi.description,
            kind: wi.kind,
            environment: wi.environment,
            labels: wi.labels,
            ...(recipe ? { recipe } : {}),
          },
        },
        { timeoutMs },
      ),
    );
    if (!run) throw new ServiceError(Code.INTERNAL, "EnqueueRun returned no run");
    await record(core, t, token, run.id, wi.reviewRequired);
    // A replayed claim (after a crashed dispatcher) may find its run already finished; its
    // RunCompleted may have been dropped as stale while the task was back in the queue.
    const finished = FINISHED[run.state];
    if (finished) {
      const report = { taskId: t.id, runId: run.id, attempt: t.attempt, result: finished, error: run.error };
      await applyRunOutcome(core, report, cause).catch(() => undefined);
    }
    return "enqueued";
  } catch (err) {
    const e = ServiceError.from(err);
    if (e.code === Code.RESOURCE_EXHAUSTED && !reserved) {
      const violation = e.findDetail(QuotaFailureSchema)?.violations[0];
      const until = new Date(Date.now() + (e.retryAfterMs ?? 5_000));
      const limit = violation?.description.includes("runs_per_day") ? "runs_per_day" : "max_concurrent_runs";
      const detail = `project quota ${limit} exhausted: ${violation?.description ?? e.message}`;
      await setBack(core, t, token, { kind: "quota", until, detail, limit });
      return "quota";
    }
    if (e.code === Code.NOT_FOUND && !reserved) {
      await cancelClaimed(core, t, token, "work item not found");
      return "cancelled";
    }
    core.logger.warn(
      { err: e, taskId: t.id, attempt: t.attempt },
      "dispatch failed; the task will be retried",
    );
    const delay = isRetryable(e) || e.code === Code.UNAVAILABLE ? 1_000 : 30_000;
    await setBack(core, t, token, {
      kind: "error",
      until: new Date(Date.now() + delay),
      error: `dispatch failed: ${Code[e.code]}: ${e.message}`,
      reservationHeld: reserved,
    });
    return "error";
  }
}

/** Risky items run only once approved; a PROPOSED item has not been accepted at all yet. */
export function needsApproval(wi: WorkItem): boolean {
  if (wi.state === WorkItemState.PROPOSED) return true;
  return (wi.risk?.risky ?? false) && wi.approvalStatus !== ApprovalStatus.APPROVED;
}

async function record(core: Core, t: TaskRow, token: string, runId: string, reviewRequired: boolean) {
  await transact(core, async (tx) => {
    const { rowCount } = await tx.client.query(
      `UPDATE tasks SET last_run_id = $3, dispatch_time = now(), dispatch_token = NULL, dispatch_deadline = NULL,
              reservation_held = state IN ('DISPATCHED', 'RUNNING'), review_required = $4,
              update_time = now(), version = version + 1
        WHERE id = $1 AND dispatch_token = $2`,
      [t.id, token, runId, reviewRequired],
    );
    if (rowCount === 0) {
      // Our claim is gone: handed back and replayed (same attempt, same run: nothing to do),
      // or the task was cancelled or unscheduled meanwhile, and then the run must not stay.
      const current = await getTask(tx.client, t.id);
      if (!current || current.state === "CANCELLED") {
        await enqueueEffects(tx.client, t, [
          { kind: "cancel_run", runId, reason: "task cancelled during dispatch" },
        ]);
        tx.effects = true;
      }
      return;
    }
    await stage(tx.client, core.subjects, cause, {
      schema: TaskDispatchedSchema,
      payload: create(TaskDispatchedSchema, {
        taskId: t.id,
        workItemId: t.workItemId,
        runId,
        attempt: t.attempt,
      }),
      aggregateType: "task",
      aggregateId: t.id,
      projectId: t.projectId,
      version: t.version + 1n,
    });
  });
}

async function setBack(core: Core, t: TaskRow, token: string, s: Setback): Promise<void> {
  await transact(core, async (tx) => {
    const until = s.kind === "approval" ? null : s.until;
    const { rowCount } = await tx.client.query(
      `UPDATE tasks SET state = 'WAITING', attempt = attempt - 1, dispatch_token = NULL, dispatch_deadline = NULL,
              approval_pending = $3, quota_until = $4, quota_detail = $5, quota_limit = $6, backoff_until = $7,
              last_error = CASE WHEN $8 = '' THEN last_error ELSE $8 END, reservation_held = $9,
              update_time = now(), version = version + 1
        WHERE id = $1 AND dispatch_token = $2`,
      [
        t.id,
        token,
        s.kind === "approval",
        s.kind === "quota" ? s.until : null,
        s.kind === "quota" ? s.detail : "",
        s.kind === "quota" ? s.limit : "",
        s.kind === "error" ? s.until : null,
        s.kind === "error" ? s.error : "",
        s.kind === "error" && s.reservationHeld,
      ],
    );
    if (rowCount !== 0 && until) tx.changes.delayed.push({ id: t.id, wakeAt: until });
  });
}

async function cancelClaimed(core: Core, t: TaskRow, token: string, reason: string): Promise<void> {
  await transact(core, async (tx) => {
    const current = await getTask(tx.client, t.id, true);
    if (!current || current.dispatchToken !== token) return;
    await cancelTask(
      core,
      tx,
      { ...current, attempt: current.attempt - 1 },
      { reason, workItemCancelled: true },
      cause,
    );
  });
}
