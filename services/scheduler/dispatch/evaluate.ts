import { create } from "@bufbuild/protobuf";
import { TaskReadySchema } from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import type { Core, Tx } from "../core.js";
import { type TaskFacts, waitReasons, wakeTime } from "../domain/readiness.js";
import { type Cause, stage } from "../events/publish.js";
import { dependenciesOf, type Outcome, TASK_COLUMNS, type TaskRow, toTaskRow } from "../store/tasks.js";

/** The facts readiness needs, from a task row and its dependencies' outcomes. */
export function factsOf(t: TaskRow, deps: readonly { workItemId: string; outcome: Outcome }[]): TaskFacts {
  return {
    dependencies: deps,
    approvalPending: t.approvalPending,
    notBefore: t.notBefore,
    backoffUntil: t.backoffUntil,
    quotaUntil: t.quotaUntil,
    quotaDetail: t.quotaDetail,
    nextRetry: t.failures,
    maxRetries: t.maxRetries,
  };
}

/**
 * Re-evaluates WAITING tasks (locking them): those with no wait reason left become READY
 * (TaskReady staged, Redis told after commit); those blocked only by time go to the delayed
 * index; the others stay as they are until the event they wait for arrives.
 */
export async function evaluateTasks(
  core: Core,
  tx: Tx,
  ids: readonly string[],
  cause: Cause,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await tx.client.query(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ANY($1::uuid[]) AND state = 'WAITING' ORDER BY id FOR UPDATE`,
    [ids],
  );
  const tasks = rows.map(toTaskRow);
  const deps = await dependenciesOf(
    tx.client,
    tasks.map((t) => t.id),
  );
  const now = new Date();
  const ready: TaskRow[] = [];
  for (const t of tasks) {
    const reasons = waitReasons(factsOf(t, deps.get(t.id) ?? []), now);
    if (reasons.length === 0) {
      ready.push(t);
      continue;
    }
    const wake = wakeTime(reasons);
    if (wake) tx.changes.delayed.push({ id: t.id, wakeAt: wake });
  }
  if (ready.length === 0) return [];
  await tx.client.query(
    `UPDATE tasks SET state = 'READY', ready_time = $2, backoff_until = NULL, quota_until = NULL,
            quota_detail = '', quota_limit = '', update_time = $2, version = version + 1
      WHERE id = ANY($1::uuid[])`,
    [ready.map((t) => t.id), now],
  );
  for (const t of ready) await stageReady(core, tx, t, now, cause);
  return ready.map((t) => t.id);
}

/** Announces a task that became READY and queues it for the Redis index after commit. */
export async function stageReady(core: Core, tx: Tx, t: TaskRow, now: Date, cause: Cause): Promise<void> {
  tx.changes.ready.push({ id: t.id, priority: t.priority, readyTime: now });
  await stage(tx.client, core.subjects, cause, {
    schema: TaskReadySchema,
    payload: create(TaskReadySchema, {
      taskId: t.id,
      workItemId: t.workItemId,
      priority: t.priority,
      nextAttempt: t.attempt + 1,
    }),
    aggregateType: "task",
    aggregateId: t.id,
    projectId: t.projectId,
    version: t.version + 1n,
  });
}

/**
 * A concurrent-run slot of `projectId` was released: the longest-waiting QUOTA tasks of that
 * project (one per slot) are re-evaluated now instead of after their RetryInfo delay.
 */
export async function wakeQuotaWaiters(core: Core, tx: Tx, projectId: string, slots: number, cause: Cause) {
  const { rows } = await tx.client.query<{ id: string }>(
    `UPDATE tasks SET quota_until = now() WHERE id IN (
       SELECT id FROM tasks WHERE project_id = $1 AND state = 'WAITING' AND quota_until > now()
          AND quota_limit <> 'runs_per_day'
        ORDER BY priority DESC, create_time, id LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING id`,
    [projectId, slots],
  );
  return evaluateTasks(
    core,
    tx,
    rows.map((r) => r.id),
    cause,
  );
}
