import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  TaskCancelledSchema,
  TaskFailed_Cause,
  TaskFailedSchema,
  TaskRetryScheduledSchema,
  TaskStartedSchema,
  TaskSucceededSchema,
} from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import { type Core, type Tx, transact } from "../core.js";
import { hasRetryLeft, retryDelayMs } from "../domain/retry-policy.js";
import { notFound, wrongState } from "../errors.js";
import { type Cause, stage } from "../events/publish.js";
import { type Effect, enqueueEffects } from "../store/effects.js";
import { getTask, type TaskRow } from "../store/tasks.js";
import { recordOutcome } from "./dependencies.js";
import { releaseOwed } from "./reservations.js";

export type RunResult = "SUCCEEDED" | "FAILED" | "CANCELLED" | "LOST";

export interface RunReport {
  taskId: string;
  runId: string;
  attempt: number;
  result: RunResult;
  error: string;
}

/** Whether a run is the task's current one (its id may not be recorded yet when events race). */
export function isCurrentRun(t: TaskRow, runId: string, attempt: number): boolean {
  if (t.state !== "DISPATCHED" && t.state !== "RUNNING") return false;
  // Without an attempt number (0), only the recorded run id can identify the run.
  if (attempt === 0) return t.lastRunId === runId;
  // Until the dispatcher records the run (clearing its claim token) the run id is not known
  // yet: outcomes can overtake that write, so the attempt number identifies the run.
  return t.attempt === attempt && (t.dispatchToken !== null || t.lastRunId === runId);
}

/**
 * Applies a run's outcome to its task, once per run id:
 *   SUCCEEDED         -> task SUCCEEDED; work item REVIEW or DONE (DONE unlocks dependents);
 *   FAILED, LOST      -> WAITING (BACKOFF) while retries remain, the delay drawn from the
 *                        policy; else task FAILED (cause RETRIES_EXHAUSTED) and work item FAILED;
 *   CANCELLED         -> task CANCELLED, never retried; work item back to APPROVED.
 * The run's quota reservation is released (consumed) in every case.
 * @throws NOT_FOUND (no such task) or WRONG_STATE (not the task's current run).
 */
export async function applyRunOutcome(
  core: Core,
  r: RunReport,
  cause: Cause,
): Promise<{ task: TaskRow; applied: boolean }> {
  const outcome = await transact(core, async (tx) => {
    const seen = await tx.client.query("SELECT 1 FROM run_outcomes WHERE run_id = $1", [r.runId]);
    const t = await getTask(tx.client, r.taskId, true);
    if (!t) throw notFound("task", r.taskId);
    if (seen.rows.length > 0) return { task: t, applied: false };
    if (!isCurrentRun(t, r.runId, r.attempt)) {
      throw wrongState(
        `tasks/${t.id}`,
        t.state,
        `run ${r.runId} (attempt ${r.attempt}) is not the task's current run`,
      );
    }
    await recordRunOutcomes(tx, [{ runId: r.runId, taskId: t.id, result: r.result }]);
    await settleRun(core, tx, t, r, cause);
    return { task: (await getTask(tx.client, t.id)) as TaskRow, applied: true };
  });
  if (outcome.applied) core.metrics.runsEnded([r]);
  return outcome;
}

/** Remembers applied outcomes by run id (the idempotency of every path that applies one). */
export async function recordRunOutcomes(
  tx: Tx,
  applied: readonly { runId: string; taskId: string; result: RunResult }[],
): Promise<void> {
  if (applied.length === 0) return;
  await tx.client.query(
    `INSERT INTO run_outcomes (run_id, task_id, outcome)
     SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[])`,
    [applied.map((a) => a.runId), applied.map((a) => a.taskId), applied.map((a) => a.result)],
  );
}

/**
 * The body of {@link applyRunOutcome} for a task locked by the caller, whose current run `r`
 * is (see {@link isCurrentRun}) and whose outcome was not applied yet; the caller records it
 * in run_outcomes. Returns the task's new state.
 */
export async function settleRun(
  core: Core,
  tx: Tx,
  t: TaskRow,
  r: RunReport,
  cause: Cause,
): Promise<TaskRow["state"]> {
  const effects: Effect[] = [];
  const release = releaseOwed({ ...t, reservationHeld: t.reservationKey !== "" }, true);
  const event = {
    aggregateType: "task" as const,
    aggregateId: t.id,
    projectId: t.projectId,
    version: t.version + 1n,
  };
  const base = { taskId: t.id, workItemId: t.workItemId };
  let next: { state: TaskRow["state"]; failures: number; backoffUntil: Date | null } = {
    state: "SUCCEEDED",
    failures: t.failures,
    backoffUntil: null,
  };
  if (r.result === "SUCCEEDED") {
    effects.push({ kind: "transition", to: "IN_PROGRESS", reason: `run ${r.runId} started` });
    effects.push({
      kind: "transition",
      to: t.reviewRequired ? "REVIEW" : "DONE",
      reason: `run ${r.runId} succeeded`,
    });
    await stage(tx.client, core.subjects, cause, {
      schema: TaskSucceededSchema,
      payload: create(TaskSucceededSchema, { ...base, runId: r.runId, attempt: t.attempt }),
      ...event,
    });
  } else if (r.result === "CANCELLED") {
    next = { ...next, state: "CANCELLED" };
    effects.push({ kind: "transition", to: "QUEUED", reason: `run ${r.runId} cancelled` });
    effects.push({ kind: "transition", to: "APPROVED", reason: `run ${r.runId} cancelled` });
    await stage(tx.client, core.subjects, cause, {
      schema: TaskCancelledSchema,
      payload: create(TaskCancelledSchema, {
        ...base,
        runId: r.runId,
        reason: r.error || "run cancelled",
        cancelledBy: cause.principal.id,
      }),
      ...event,
    });
  } else {
    const failures = t.failures + 1;
    const policy = {
      maxRetries: t.maxRetries,
      baseMs: t.backoffBaseMs,
      capMs: t.backoffCapMs,
      jitter: t.jitter,
    };
    if (hasRetryLeft(policy, failures)) {
      const delay = retryDelayMs(policy, failures);
      const until = new Date(Date.now() + delay);
      next = { state: "WAITING", failures, backoffUntil: until };
      tx.changes.delayed.push({ id: t.id, wakeAt: until });
      effects.push({
        kind: "transition",
        to: "QUEUED",
        reason: `run ${r.runId} ${r.result}; retry ${failures}`,
      });
      await stage(tx.client, core.subjects, cause, {
        schema: TaskRetryScheduledSchema,
        payload: create(TaskRetryScheduledSchema, {
          ...base,
          failedRunId: r.runId,
          failedAttempt: t.attempt,
          nextAttempt: t.attempt + 1,
          retryTime: timestampFromDate(until),
          backoff: durationFromMs(delay),
          error: r.error,
        }),
        ...event,
      });
    } else {
      next = { state: "FAILED", failures, backoffUntil: null };
      effects.push({
        kind: "transition",
        to: "FAILED",
        reason: `run ${r.runId} ${r.result}: ${r.error}`.trim(),
      });
      await stage(tx.client, core.subjects, cause, {
        schema: TaskFailedSchema,
        payload: create(TaskFailedSchema, {
          ...base,
          runId: r.runId,
          attempt: t.attempt,
          cause: TaskFailed_Cause.RETRIES_EXHAUSTED,
          error: r.error,
        }),
        ...event,
      });
    }
  }
  if (release) effects.push(release);
  const terminal = next.state !== "WAITING";
  await tx.client.query(
    `UPDATE tasks SET state = $2, failures = $3, backoff_until = $4, last_run_id = $5, last_error = $6,
              reservation_held = false, finish_time = CASE WHEN $7 THEN now() ELSE NULL END,
              update_time = now(), version = version + 1 WHERE id = $1`,
    [
      t.id,
      next.state,
      next.failures,
      next.backoffUntil,
      r.runId,
      r.result === "SUCCEEDED" ? "" : r.error,
      terminal,
    ],
  );
  await enqueueEffects(tx.client, t, effects);
  tx.effects = true;
  if (r.result === "SUCCEEDED" && !t.reviewRequired) {
    await recordOutcome(
      core,
      tx,
      { workItemId: t.workItemId, projectId: t.projectId, outcome: "DONE" },
      cause,
    );
  } else if (next.state === "FAILED") {
    await recordOutcome(
      core,
      tx,
      { workItemId: t.workItemId, projectId: t.projectId, outcome: "FAILED" },
      cause,
    );
  }
  return next.state;
}

/** An agent started the task's current run: task RUNNING, work item IN_PROGRESS. */
export async function applyRunStarted(core: Core, r: RunStart, cause: Cause): Promise<boolean> {
  return transact(core, async (tx) => {
    const t = await getTask(tx.client, r.taskId, true);
    if (!t || !startsRun(t, r)) return false;
    await markRunning(core, tx, t, r, cause);
    return true;
  });
}

export interface RunStart {
  taskId: string;
  runId: string;
  attempt: number;
  agentId: string;
}

/** Whether `r` starts the task's current run (only a DISPATCHED task starts). */
export function startsRun(t: TaskRow, r: RunStart): boolean {
  return t.state === "DISPATCHED" && isCurrentRun(t, r.runId, r.attempt);
}

/** The body of {@link applyRunStarted} for a locked task that {@link startsRun} `r`. */
export async function markRunning(core: Core, tx: Tx, t: TaskRow, r: RunStart, cause: Cause): Promise<void> {
  await tx.client.query(
    `UPDATE tasks SET state = 'RUNNING', last_run_id = $2, update_time = now(), version = version + 1
        WHERE id = $1`,
    [t.id, r.runId],
  );
  await stage(tx.client, core.subjects, cause, {
    schema: TaskStartedSchema,
    payload: create(TaskStartedSchema, { workItemId: t.workItemId, ...r }),
    aggregateType: "task",
    aggregateId: t.id,
    projectId: t.projectId,
    version: t.version + 1n,
  });
  await enqueueEffects(tx.client, t, [
    { kind: "transition", to: "IN_PROGRESS", reason: `run ${r.runId} started` },
  ]);
  tx.effects = true;
}
