import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { TaskScheduledSchema } from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import { type WorkItem, WorkItemState } from "../../../gen/codex/workitem/v1/work_item_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { asScheduler, type Core, type Tx, transact } from "../core.js";
import { block, failForDependency, recordOutcome } from "../dispatch/dependencies.js";
import { needsApproval } from "../dispatch/dispatch-one.js";
import { factsOf, stageReady } from "../dispatch/evaluate.js";
import { findCycle } from "../domain/dag.js";
import { waitReasons, wakeTime } from "../domain/readiness.js";
import type { ScheduleSpec } from "../domain/schedule-spec.js";
import {
  alreadyScheduled,
  dependencyCycle,
  idempotencyKeyReused,
  notFound,
  unknownDependency,
  wrongState,
} from "../errors.js";
import { actorId, type Cause, stage } from "../events/publish.js";
import { enqueueEffects } from "../store/effects.js";
import { findRequest, requestHash, saveRequest } from "../store/idempotency.js";
import { getTask, insertTask, liveEdges, liveTaskOf, type Outcome, type TaskRow } from "../store/tasks.js";
import { authorize } from "./authz.js";
import { taskMessage } from "./task-message.js";

export interface ScheduleRequest {
  workItemId: string;
  spec: ScheduleSpec;
  /** Idempotency key; empty for none. */
  requestId: string;
  cause: Cause;
  /** A quota reservation already made for the first run (the saga's "reserve_quota"). */
  initialReservationKey?: string;
  /** Who the task is scheduled for, when not the caller (the command's scheduled_by). */
  scheduledBy?: string;
}

const METHOD = "ScheduleWorkItem";
const OUTCOME_OF: Partial<Record<WorkItemState, Outcome>> = {
  [WorkItemState.DONE]: "DONE",
  [WorkItemState.FAILED]: "FAILED",
  [WorkItemState.CANCELLED]: "CANCELLED",
};

/**
 * Creates a work item's task: checks the item and its dependencies with the workitem service,
 * refuses cycles under a per-project lock (so two concurrent schedules cannot close one
 * together), and stores the task WAITING or READY in one transaction with its TaskScheduled
 * event and the QUEUED transition it owes the work item. Shared by the RPC, the
 * ScheduleWorkItem command and the saga's "schedule_task" step.
 */
export async function scheduleWorkItem(core: Core, req: ScheduleRequest): Promise<TaskRow> {
  const hash = requestHash({ w: req.workItemId, s: req.spec, r: req.initialReservationKey ?? "" });
  const replay = await replayed(core, req.requestId, hash);
  if (replay) return replay;
  const wi = await fetchWorkItem(core, req.workItemId);
  if (!wi) throw notFound("work item", req.workItemId);
  authorize(req.cause.principal, wi.projectId, "write", { type: "work item", name: req.workItemId });
  if (wi.state === WorkItemState.DONE || wi.state === WorkItemState.CANCELLED) {
    throw wrongState(
      `work_items/${wi.id}`,
      WorkItemState[wi.state],
      `work item is ${WorkItemState[wi.state]}`,
    );
  }
  const deps = await checkDependencies(core, wi, req.spec.dependsOn);
  const hasDeps = req.spec.dependsOn.length > 0;
  const task = await transact(core, async (tx) => {
    // Only a task with dependencies can close a cycle; those are checked one at a time per project.
    if (hasDeps)
      await tx.client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`schedule:${wi.projectId}`]);
    const again = await findRequest(tx.client, METHOD, req.requestId, hash);
    if (again) return again.same ? again.resultId : Promise.reject(idempotencyKeyReused(req.requestId));
    const live = await liveTaskOf(tx.client, wi.id);
    if (live) throw alreadyScheduled(wi.id, live.id);
    const outcomes = hasDeps ? await lockDependencies(tx, wi, deps) : new Map<string, Outcome>();
    if (hasDeps) {
      const edges = await liveEdges(tx.client, wi.projectId);
      const cycle = findCycle(wi.id, req.spec.dependsOn, (id) => edges.get(id) ?? []);
      if (cycle) throw dependencyCycle(wi.id, cycle);
    }
    const now = new Date();
    const row = newTaskRow(req, wi, now);
    const depends = req.spec.dependsOn.map((id) => ({
      workItemId: id,
      outcome: outcomes.get(id) ?? ("" as Outcome),
    }));
    const reasons = waitReasons(factsOf(row, depends), now);
    if (reasons.length === 0) Object.assign(row, { state: "READY", readyTime: now });
    await insertTask(tx.client, row, req.spec.dependsOn);
    await saveRequest(tx.client, METHOD, req.requestId, hash, row.id);
    await stage(tx.client, core.subjects, req.cause, {
      schema: TaskScheduledSchema,
      payload: create(TaskScheduledSchema, { task: taskMessage(row, depends, now) }),
      aggregateType: "task",
      aggregateId: row.id,
      projectId: row.projectId,
      version: 1n,
    });
    if (row.state === "READY") await stageReady(core, tx, { ...row, version: 0n }, now, req.cause);
    const wake = wakeTime(reasons);
    if (wake) tx.changes.delayed.push({ id: row.id, wakeAt: wake });
    if (!row.approvalPending) {
      await enqueueEffects(tx.client, row, [
        { kind: "transition", to: "QUEUED", reason: `scheduled as task ${row.id}` },
      ]);
      tx.effects = true;
    }
    // The item is live again: forget an earlier failure of it (its dependents may wait for it).
    await tx.client.query(
      `INSERT INTO work_item_outcomes AS o (work_item_id, project_id) VALUES ($1, $2)
       ON CONFLICT (work_item_id) DO UPDATE SET outcome = '', update_time = now() WHERE o.outcome <> ''`,
      [wi.id, wi.projectId],
    );
    const failed = depends.find((d) => d.outcome === "FAILED" || d.outcome === "CANCELLED");
    if (failed) await applyFailedDependency(core, tx, row, failed, req.cause);
    return row.id;
  });
  return (await getTask(core.pool, task)) as TaskRow;
}

async function replayed(core: Core, requestId: string, hash: string): Promise<TaskRow | undefined> {
  const found = await findRequest(core.pool, METHOD, requestId, hash);
  if (!found) return undefined;
  if (!found.same) throw idempotencyKeyReused(requestId);
  return getTask(core.pool, found.resultId);
}

function newTaskRow(req: ScheduleRequest, wi: WorkItem, now: Date): TaskRow {
  const { spec } = req;
  return {
    id: randomUUID(),
    workItemId: wi.id,
    projectId: wi.projectId,
    state: "WAITING",
    priority: spec.priority,
    notBefore: spec.notBefore,
    maxRetries: spec.retry.maxRetries,
    backoffBaseMs: spec.retry.baseMs,
    backoffCapMs: spec.retry.capMs,
    jitter: spec.retry.jitter,
    dependencyFailurePolicy: spec.dependencyFailurePolicy,
    agentSelector: spec.agentSelector,
    attempt: 0,
    failures: 0,
    approvalPending: needsApproval(wi),
    backoffUntil: null,
    quotaUntil: null,
    quotaDetail: "",
    quotaLimit: "",
    reviewRequired: wi.reviewRequired,
    initialReservationKey: req.initialReservationKey ?? "",
    reservationKey: "",
    reservationHeld: false,
    dispatchToken: null,
    lastRunId: "",
    lastError: "",
    scheduledBy: req.scheduledBy ?? actorId(req.cause.principal),
    createTime: now,
    updateTime: now,
    readyTime: null,
    dispatchTime: null,
    finishTime: null,
    version: 1n,
  };
}

async function fetchWorkItem(core: Core, id: string): Promise<WorkItem | undefined> {
  try {
    const res = await asScheduler(() =>
      core.downstream.workItems.getWorkItem(
        { workItemId: id },
        { timeoutMs: core.settings.downstreamTimeoutMs },
      ),
    );
    return res.workItem;
  } catch (err) {
    const e = ServiceError.from(err);
    if (e.code === Code.NOT_FOUND || e.code === Code.INVALID_ARGUMENT) return undefined;
    throw e;
  }
}

/** Every dependency must exist in the same project; returns what is known of each one's end. */
async function checkDependencies(core: Core, wi: WorkItem, ids: readonly string[]) {
  const known = await core.pool.query<{ work_item_id: string; project_id: string; outcome: Outcome }>(
    "SELECT work_item_id, project_id, outcome FROM work_item_outcomes WHERE work_item_id = ANY($1)",
    [ids],
  );
  const local = new Map(known.rows.map((r) => [r.work_item_id, r]));
  return Promise.all(
    ids.map(async (id, i) => {
      const field = `options.depends_on[${i}]`;
      const row = local.get(id);
      if (row) {
        if (row.project_id !== wi.projectId) throw unknownDependency(field, id, "belongs to another project");
        return { id, outcome: row.outcome };
      }
      const dep = await fetchWorkItem(core, id);
      if (!dep) throw unknownDependency(field, id, "does not exist");
      if (dep.projectId !== wi.projectId) throw unknownDependency(field, id, "belongs to another project");
      return { id, outcome: OUTCOME_OF[dep.state] ?? "" };
    }),
  );
}

/**
 * Records what is known of each dependency and locks those rows (FOR SHARE) until commit, so a
 * dependency finishing concurrently either is seen here or, blocked on the lock, sees this task
 * among its dependents afterwards: no wake-up is lost.
 */
async function lockDependencies(tx: Tx, wi: WorkItem, deps: readonly { id: string; outcome: Outcome }[]) {
  await tx.client.query(
    `INSERT INTO work_item_outcomes (work_item_id, project_id, outcome)
     SELECT id, $1, outcome FROM unnest($2::text[], $3::text[]) AS x(id, outcome)
     ON CONFLICT (work_item_id) DO NOTHING`,
    [wi.projectId, deps.map((d) => d.id), deps.map((d) => d.outcome)],
  );
  const { rows } = await tx.client.query<{ work_item_id: string; outcome: Outcome }>(
    "SELECT work_item_id, outcome FROM work_item_outcomes WHERE work_item_id = ANY($1) ORDER BY work_item_id FOR SHARE",
    [deps.map((d) => d.id)],
  );
  return new Map(rows.map((r) => [r.work_item_id, r.outcome]));
}

/** A dependency that already failed applies the task's policy at once. */
async function applyFailedDependency(
  core: Core,
  tx: Tx,
  t: TaskRow,
  failed: { workItemId: string; outcome: Outcome },
  cause: Cause,
) {
  const detail = `dependency ${failed.workItemId} ${failed.outcome}`;
  if (t.dependencyFailurePolicy === "BLOCK_DEPENDENTS")
    return block(core, tx, t, failed.workItemId, detail, cause);
  await failForDependency(core, tx, t, failed.workItemId, detail, cause);
  await recordOutcome(
    core,
    tx,
    { workItemId: t.workItemId, projectId: t.projectId, outcome: "FAILED" },
    cause,
  );
}
