import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  TaskRequeuedSchema,
  TaskUnscheduledSchema,
} from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import { TaskState } from "../../../gen/codex/scheduler/v1/task_pb.js";
import { type Core, transact } from "../core.js";
import { cancelTask } from "../dispatch/cancel.js";
import { recordOutcome } from "../dispatch/dependencies.js";
import { evaluateTasks } from "../dispatch/evaluate.js";
import { releaseOwed } from "../dispatch/reservations.js";
import { alreadyScheduled, etagMismatch, idempotencyKeyReused, notFound, wrongState } from "../errors.js";
import { actorId, type Cause, stage } from "../events/publish.js";
import { type Effect, enqueueEffects } from "../store/effects.js";
import { findRequest, requestHash, saveRequest } from "../store/idempotency.js";
import { getTask, liveTaskOf, type TaskRow } from "../store/tasks.js";
import { authorize } from "./authz.js";
import { taskEtag } from "./task-message.js";

/** Loads a task the caller may change (NOT_FOUND for callers without a role in its project). */
export async function writableTask(core: Core, taskId: string, cause: Cause): Promise<TaskRow> {
  const t = await getTask(core.pool, taskId);
  if (!t) throw notFound("task", taskId);
  authorize(cause.principal, t.projectId, "write", { type: "task", name: taskId });
  return t;
}

function checkEtag(t: TaskRow, etag: string): void {
  if (etag !== "" && etag !== taskEtag(t)) throw etagMismatch(`tasks/${t.id}`);
}

/** Replays an earlier call with the same request id (same content), or refuses a reused key. */
async function replay(
  core: Core,
  method: string,
  requestId: string,
  hash: string,
): Promise<TaskRow | undefined> {
  const found = await findRequest(core.pool, method, requestId, hash);
  if (!found) return undefined;
  if (!found.same) throw idempotencyKeyReused(requestId);
  return getTask(core.pool, found.resultId);
}

export interface RequeueInput {
  taskId: string;
  delayMs: number;
  priority: number | undefined;
  reason: string;
  etag: string;
  requestId: string;
}

/**
 * Puts a WAITING, READY or FAILED task back in the queue: any delay replaces its not_before,
 * backoff and quota waits are cleared (dispatch re-checks quota), a FAILED task gets a fresh
 * retry budget and its work item returns to QUEUED.
 */
export async function requeueTask(core: Core, input: RequeueInput, cause: Cause): Promise<TaskRow> {
  const hash = requestHash(input);
  const again = await replay(core, "RequeueTask", input.requestId, hash);
  if (again) return again;
  await writableTask(core, input.taskId, cause);
  return transact(core, async (tx) => {
    const t = (await getTask(tx.client, input.taskId, true)) as TaskRow;
    checkEtag(t, input.etag);
    if (t.state !== "WAITING" && t.state !== "READY" && t.state !== "FAILED") {
      const hint =
        t.state === "DISPATCHED" || t.state === "RUNNING"
          ? "cancel the run first"
          : "schedule the work item again";
      throw wrongState(`tasks/${t.id}`, t.state, `a ${t.state} task cannot be requeued; ${hint}`);
    }
    if (t.state === "FAILED") {
      const live = await liveTaskOf(tx.client, t.workItemId);
      if (live) throw alreadyScheduled(t.workItemId, live.id);
    }
    const notBefore = input.delayMs > 0 ? new Date(Date.now() + input.delayMs) : null;
    await tx.client.query(
      `UPDATE tasks SET state = 'WAITING', priority = COALESCE($2, priority), not_before = $3, backoff_until = NULL,
              quota_until = NULL, quota_detail = '', quota_limit = '', finish_time = NULL,
              failures = CASE WHEN state = 'FAILED' THEN 0 ELSE failures END,
              ready_time = CASE WHEN state = 'READY' THEN NULL ELSE ready_time END,
              update_time = now(), version = version + 1 WHERE id = $1`,
      [t.id, input.priority ?? null, notBefore],
    );
    tx.changes.removed.push(t.id);
    await stage(tx.client, core.subjects, cause, {
      schema: TaskRequeuedSchema,
      payload: create(TaskRequeuedSchema, {
        taskId: t.id,
        workItemId: t.workItemId,
        previousState: TaskState[t.state],
        priority: input.priority ?? t.priority,
        notBefore: notBefore ? timestampFromDate(notBefore) : undefined,
        requeuedBy: actorId(cause.principal),
        reason: input.reason,
      }),
      aggregateType: "task",
      aggregateId: t.id,
      projectId: t.projectId,
      version: t.version + 1n,
    });
    if (t.state === "FAILED") {
      await enqueueEffects(tx.client, t, [
        { kind: "transition", to: "QUEUED", reason: input.reason || "task requeued" },
      ]);
      tx.effects = true;
      await recordOutcome(core, tx, { workItemId: t.workItemId, projectId: t.projectId, outcome: "" }, cause);
    }
    await saveRequest(tx.client, "RequeueTask", input.requestId, hash, t.id);
    await evaluateTasks(core, tx, [t.id], cause);
    return (await getTask(tx.client, t.id)) as TaskRow;
  });
}

/** CancelTask: see dispatch/cancel.ts; a CANCELLED task is returned unchanged. */
export async function cancelTaskById(
  core: Core,
  input: { taskId: string; reason: string; etag: string; requestId: string },
  cause: Cause,
): Promise<TaskRow> {
  const hash = requestHash(input);
  const again = await replay(core, "CancelTask", input.requestId, hash);
  if (again) return again;
  await writableTask(core, input.taskId, cause);
  return transact(core, async (tx) => {
    const t = (await getTask(tx.client, input.taskId, true)) as TaskRow;
    if (t.state === "CANCELLED") return t;
    checkEtag(t, input.etag);
    await cancelTask(
      core,
      tx,
      t,
      { reason: input.reason || "task cancelled", workItemCancelled: false },
      cause,
    );
    await saveRequest(tx.client, "CancelTask", input.requestId, hash, t.id);
    return (await getTask(tx.client, t.id)) as TaskRow;
  });
}

/**
 * Removes a task that never ran, leaving no queue entry (saga compensation); the work item
 * returns to APPROVED. Idempotent with allow_missing.
 */
export async function unscheduleTask(
  core: Core,
  input: { taskId: string; allowMissing: boolean; reason: string },
  cause: Cause,
): Promise<void> {
  await transact(core, async (tx) => {
    const t = await getTask(tx.client, input.taskId, true);
    if (!t) {
      if (input.allowMissing) return;
      throw notFound("task", input.taskId);
    }
    if (t.state !== "WAITING" && t.state !== "READY") {
      throw wrongState(`tasks/${t.id}`, t.state, `task is ${t.state}: a run was dispatched or it ended`);
    }
    await tx.client.query("DELETE FROM tasks WHERE id = $1", [t.id]);
    tx.changes.removed.push(t.id);
    await stage(tx.client, core.subjects, cause, {
      schema: TaskUnscheduledSchema,
      payload: create(TaskUnscheduledSchema, {
        taskId: t.id,
        workItemId: t.workItemId,
        reason: input.reason,
      }),
      aggregateType: "task",
      aggregateId: t.id,
      projectId: t.projectId,
      version: t.version + 1n,
    });
    const effects: Effect[] = [];
    if (!t.approvalPending)
      effects.push({ kind: "transition", to: "APPROVED", reason: input.reason || "unscheduled" });
    const release = releaseOwed(t, false);
    if (release) effects.push(release);
    await enqueueEffects(tx.client, t, effects);
    tx.effects = effects.length > 0;
  });
}
