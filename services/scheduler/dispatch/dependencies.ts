import { create } from "@bufbuild/protobuf";
import {
  TaskBlockedSchema,
  TaskFailed_Cause,
  TaskFailedSchema,
} from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import type { Core, Tx } from "../core.js";
import { type Cause, stage } from "../events/publish.js";
import { type Effect, enqueueEffects } from "../store/effects.js";
import type { Outcome, TaskRow } from "../store/tasks.js";
import { TASK_COLUMNS, toTaskRow } from "../store/tasks.js";
import { evaluateTasks } from "./evaluate.js";
import { releaseOwed } from "./reservations.js";

export interface OutcomeNews {
  workItemId: string;
  projectId: string;
  outcome: Outcome;
  /** The work item's aggregate version, when the news comes from its own event. */
  version?: bigint | undefined;
}

/**
 * Records what became of a work item and applies it to the tasks waiting for it:
 *   DONE                    -> dependents are re-evaluated (and BLOCKED ones resume QUEUED);
 *   FAILED or CANCELLED     -> under FAIL_DEPENDENTS a dependent FAILS (TaskFailed, cause
 *                              DEPENDENCY_FAILED; its work item FAILED), which cascades to its own
 *                              dependents; under BLOCK_DEPENDENTS it keeps WAITING and its work
 *                              item becomes BLOCKED until the dependency is retried to DONE.
 * News older than what is known (by aggregate version) is ignored.
 */
export async function recordOutcome(core: Core, tx: Tx, news: OutcomeNews, cause: Cause): Promise<void> {
  const queue: OutcomeNews[] = [news];
  for (let item = queue.shift(); item; item = queue.shift()) {
    const previous = await upsertOutcome(tx, item);
    if (previous === undefined || previous === item.outcome) continue;
    const dependents = await waitingDependents(tx, item.workItemId);
    if (item.outcome === "DONE") {
      await evaluateTasks(
        core,
        tx,
        dependents.map((t) => t.id),
        cause,
      );
      await unblock(tx, dependents, item.workItemId);
      continue;
    }
    if (item.outcome === "") continue;
    for (const t of dependents) {
      const detail = `dependency ${item.workItemId} ${item.outcome}`;
      if (t.dependencyFailurePolicy === "BLOCK_DEPENDENTS") {
        await block(core, tx, t, item.workItemId, detail, cause);
      } else {
        await failForDependency(core, tx, t, item.workItemId, detail, cause);
        queue.push({ workItemId: t.workItemId, projectId: t.projectId, outcome: "FAILED" });
      }
    }
  }
}

/** Stores the news; returns the outcome it replaced, or undefined when the news was stale. */
async function upsertOutcome(tx: Tx, n: OutcomeNews): Promise<Outcome | undefined> {
  const { rows } = await tx.client.query<{ outcome: Outcome }>(
    "SELECT outcome FROM work_item_outcomes WHERE work_item_id = $1 FOR UPDATE",
    [n.workItemId],
  );
  const previous = rows[0]?.outcome ?? "";
  const { rowCount } = await tx.client.query(
    `INSERT INTO work_item_outcomes AS o (work_item_id, project_id, outcome, version)
     VALUES ($1, $2, $3, COALESCE($4::bigint, 0))
     ON CONFLICT (work_item_id) DO UPDATE SET outcome = EXCLUDED.outcome,
       version = GREATEST(o.version, EXCLUDED.version), update_time = now()
     WHERE $4::bigint IS NULL OR o.version < $4::bigint`,
    [n.workItemId, n.projectId, n.outcome, n.version === undefined ? null : String(n.version)],
  );
  return rowCount === 0 ? undefined : previous;
}

async function waitingDependents(tx: Tx, workItemId: string): Promise<TaskRow[]> {
  const { rows } = await tx.client.query(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE state = 'WAITING'
        AND id IN (SELECT task_id FROM task_dependencies WHERE depends_on = $1)
      ORDER BY id FOR UPDATE`,
    [workItemId],
  );
  return rows.map(toTaskRow);
}

export async function block(
  core: Core,
  tx: Tx,
  t: TaskRow,
  dependency: string,
  detail: string,
  cause: Cause,
) {
  await tx.client.query(
    "UPDATE tasks SET blocked = true, last_error = $2, update_time = now(), version = version + 1 WHERE id = $1",
    [t.id, detail],
  );
  await stage(tx.client, core.subjects, cause, {
    schema: TaskBlockedSchema,
    payload: create(TaskBlockedSchema, {
      taskId: t.id,
      workItemId: t.workItemId,
      dependencyWorkItemId: dependency,
      detail,
    }),
    aggregateType: "task",
    aggregateId: t.id,
    projectId: t.projectId,
    version: t.version + 1n,
  });
  await enqueueEffects(tx.client, t, [{ kind: "transition", to: "BLOCKED", reason: detail }]);
  tx.effects = true;
}

/** BLOCKED tasks whose failed dependencies all came back DONE: their work items resume QUEUED. */
async function unblock(tx: Tx, dependents: readonly TaskRow[], workItemId: string) {
  if (dependents.length === 0) return;
  const { rows } = await tx.client.query<{ id: string; work_item_id: string }>(
    `UPDATE tasks t SET blocked = false, last_error = '', update_time = now(), version = version + 1
      WHERE t.id = ANY($1::uuid[]) AND t.blocked
        AND NOT EXISTS (SELECT 1 FROM task_dependencies d JOIN work_item_outcomes o ON o.work_item_id = d.depends_on
                         WHERE d.task_id = t.id AND o.outcome IN ('FAILED', 'CANCELLED'))
      RETURNING t.id, t.work_item_id`,
    [dependents.map((t) => t.id)],
  );
  for (const r of rows) {
    await enqueueEffects(tx.client, { id: r.id, workItemId: r.work_item_id }, [
      { kind: "transition", to: "QUEUED", reason: `dependency ${workItemId} is DONE` },
    ]);
    tx.effects = true;
  }
}

export async function failForDependency(
  core: Core,
  tx: Tx,
  t: TaskRow,
  dependency: string,
  detail: string,
  cause: Cause,
) {
  await tx.client.query(
    `UPDATE tasks SET state = 'FAILED', last_error = $2, finish_time = now(), update_time = now(),
            version = version + 1 WHERE id = $1`,
    [t.id, detail],
  );
  tx.changes.removed.push(t.id);
  await stage(tx.client, core.subjects, cause, {
    schema: TaskFailedSchema,
    payload: create(TaskFailedSchema, {
      taskId: t.id,
      workItemId: t.workItemId,
      runId: t.lastRunId,
      attempt: t.attempt,
      cause: TaskFailed_Cause.DEPENDENCY_FAILED,
      error: detail,
      dependencyWorkItemId: dependency,
    }),
    aggregateType: "task",
    aggregateId: t.id,
    projectId: t.projectId,
    version: t.version + 1n,
  });
  const effects: Effect[] = [{ kind: "transition", to: "FAILED", reason: detail }];
  const release = releaseOwed(t, false);
  if (release) effects.push(release);
  await enqueueEffects(tx.client, t, effects);
  tx.effects = true;
}
