import { WorkItemState } from "../../../gen/codex/workitem/v1/work_item_pb.js";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { backoffDelay } from "../../../mesh/resilience/retry.js";
import { asScheduler, type Core, transact } from "../core.js";
import { SCHEDULER_PRINCIPAL } from "../events/publish.js";
import {
  deleteEffects,
  type EffectRow,
  lockDueHeads,
  nextEffectDueMs,
  postponeEffect,
} from "../store/effects.js";
import { wakeQuotaWaiters } from "./evaluate.js";

const BATCH = 200;
const MAX_ATTEMPTS = 50;
/** Worth retrying: the call may not have happened, or the other side may recover. */
const TRANSIENT = new Set([
  Code.UNAVAILABLE,
  Code.DEADLINE_EXCEEDED,
  Code.ABORTED,
  Code.INTERNAL,
  Code.UNKNOWN,
  Code.RESOURCE_EXHAUSTED,
  Code.CANCELLED,
]);

/**
 * One round of the effects worker: runs the calls the scheduler owes other services (work
 * item transitions, quota releases, run cancellations), first-in-line per work item, the
 * different work items concurrently. The rows stay locked while their calls run, so another
 * replica skips them; a success deletes the row, a transient failure postpones it with
 * backoff, a refusal (e.g. the work item already moved on) is logged and dropped: the
 * scheduler's own state never depends on those calls succeeding.
 * Returns the sleep until the next effect falls due.
 */
export async function runEffects(core: Core): Promise<number> {
  const released: string[] = [];
  const count = await withTransaction(core.pool, async (client) => {
    const rows = await lockDueHeads(client, BATCH);
    const results = await Promise.all(rows.map((row) => execute(core, row)));
    const done: bigint[] = [];
    for (const [i, row] of rows.entries()) {
      const res = results[i];
      if (res === undefined) continue;
      if (res.ok) {
        done.push(row.seq);
        if (row.effect.kind === "release" && res.released) released.push(row.effect.projectId);
      } else {
        await postponeEffect(client, row.seq, res.retryInMs, res.error);
      }
    }
    await deleteEffects(client, done);
    return rows.length;
  });
  for (const projectId of new Set(released)) {
    const slots = released.filter((p) => p === projectId).length;
    await transact(core, (tx) =>
      wakeQuotaWaiters(core, tx, projectId, slots, { principal: SCHEDULER_PRINCIPAL }),
    );
  }
  if (count === BATCH) return 0;
  return (await nextEffectDueMs(core.pool)) ?? core.settings.idlePollMs;
}

type Result = { ok: true; released: boolean } | { ok: false; retryInMs: number; error: string };

async function execute(core: Core, row: EffectRow): Promise<Result> {
  const { workItems, project, agents } = core.downstream;
  const timeoutMs = core.settings.downstreamTimeoutMs;
  const e = row.effect;
  try {
    await asScheduler(async () => {
      if (e.kind === "transition") {
        await workItems.transitionWorkItem(
          {
            workItemId: row.workItemId,
            toState: WorkItemState[e.to],
            reason: e.reason.slice(0, 1024),
            requestId: `scheduler-effect-${row.seq}`,
          },
          { timeoutMs },
        );
      } else if (e.kind === "release") {
        await project.releaseRunSlot(
          { projectId: e.projectId, reservationKey: e.key, consumed: e.consumed },
          { timeoutMs },
        );
      } else {
        await agents.cancelRun(
          { runId: e.runId, reason: e.reason, requestId: `scheduler-effect-${row.seq}` },
          { timeoutMs },
        );
      }
    });
    return { ok: true, released: true };
  } catch (err) {
    const se = ServiceError.from(err);
    if (TRANSIENT.has(se.code) && row.attempts + 1 < MAX_ATTEMPTS) {
      return {
        ok: false,
        retryInMs: 200 + backoffDelay(row.attempts, 200, 30_000),
        error: `${Code[se.code]}: ${se.message}`,
      };
    }
    const level = se.code === Code.FAILED_PRECONDITION || se.code === Code.NOT_FOUND ? "debug" : "warn";
    core.logger[level](
      { err: se, effect: e, workItemId: row.workItemId, taskId: row.taskId },
      "effect refused; dropped (the scheduler's state does not depend on it)",
    );
    return { ok: true, released: false };
  }
}
