import type { Core, Tx } from "../core.js";
import type { Cause } from "../events/publish.js";
import { enqueueEffects } from "../store/effects.js";
import { liveTaskOf } from "../store/tasks.js";
import { evaluateTasks } from "./evaluate.js";

/**
 * The work item's approval was granted (or a PROPOSED item was accepted): its task stops
 * waiting for APPROVAL and the item moves to QUEUED before the task can become READY, so the
 * IN_PROGRESS that follows dispatch is never overtaken. Dispatch re-reads the item and checks
 * the approval again, so a stale grant cannot release unapproved work.
 */
export async function approvalGranted(
  core: Core,
  tx: Tx,
  workItemId: string,
  cause: Cause,
): Promise<boolean> {
  const t = await liveTaskOf(tx.client, workItemId, true);
  if (!t?.approvalPending) return false;
  await tx.client.query(
    "UPDATE tasks SET approval_pending = false, update_time = now(), version = version + 1 WHERE id = $1",
    [t.id],
  );
  await enqueueEffects(tx.client, t, [{ kind: "transition", to: "QUEUED", reason: "approval granted" }]);
  tx.effects = true;
  await evaluateTasks(core, tx, [t.id], cause);
  return true;
}
