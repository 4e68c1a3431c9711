import { create } from "@bufbuild/protobuf";
import { TaskCancelledSchema } from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import type { Core, Tx } from "../core.js";
import { wrongState } from "../errors.js";
import { actorId, type Cause, stage } from "../events/publish.js";
import { type Effect, enqueueEffects } from "../store/effects.js";
import type { TaskRow } from "../store/tasks.js";
import { releaseOwed } from "./reservations.js";

/**
 * Cancels a locked task: CANCELLED, out of the index, its active run cancelled through the
 * agent manager, its quota released, and (unless the work item itself was cancelled) the work
 * item returned to APPROVED, through QUEUED when it was IN_PROGRESS. A CANCELLED task is left
 * alone; SUCCEEDED and FAILED ones are refused with WRONG_STATE.
 */
export async function cancelTask(
  core: Core,
  tx: Tx,
  t: TaskRow,
  opts: { reason: string; workItemCancelled: boolean },
  cause: Cause,
): Promise<boolean> {
  if (t.state === "CANCELLED") return false;
  if (t.state === "SUCCEEDED" || t.state === "FAILED") {
    throw wrongState(`tasks/${t.id}`, t.state, `task is ${t.state} and cannot be cancelled`);
  }
  // While a claim is open (token set) last_run_id may still name the previous run; the
  // dispatcher cancels the new one itself when it finds its claim gone.
  const recorded = t.state === "RUNNING" || (t.state === "DISPATCHED" && t.dispatchToken === null);
  const active = recorded ? t.lastRunId : "";
  await tx.client.query(
    `UPDATE tasks SET state = 'CANCELLED', dispatch_token = NULL, dispatch_deadline = NULL, reservation_held = false,
            last_error = $2, finish_time = now(), update_time = now(), version = version + 1 WHERE id = $1`,
    [t.id, opts.reason],
  );
  tx.changes.removed.push(t.id);
  await stage(tx.client, core.subjects, cause, {
    schema: TaskCancelledSchema,
    payload: create(TaskCancelledSchema, {
      taskId: t.id,
      workItemId: t.workItemId,
      cancelledBy: actorId(cause.principal),
      reason: opts.reason,
      runId: active,
    }),
    aggregateType: "task",
    aggregateId: t.id,
    projectId: t.projectId,
    version: t.version + 1n,
  });
  const effects: Effect[] = [];
  if (active !== "") effects.push({ kind: "cancel_run", runId: active, reason: opts.reason });
  const release = releaseOwed(t, t.state === "RUNNING");
  if (release) effects.push(release);
  if (!opts.workItemCancelled) {
    if (t.state === "RUNNING") effects.push({ kind: "transition", to: "QUEUED", reason: opts.reason });
    effects.push({ kind: "transition", to: "APPROVED", reason: opts.reason || "task cancelled" });
  }
  await enqueueEffects(tx.client, t, effects);
  tx.effects = true;
  return true;
}
