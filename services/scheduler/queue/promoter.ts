import { type Core, transact } from "../core.js";
import { evaluateTasks } from "../dispatch/evaluate.js";
import { SCHEDULER_PRINCIPAL } from "../events/publish.js";

const BATCH = 500;

/**
 * One round of the delayed-index promoter: tasks whose time-based wait (not_before, backoff,
 * quota retry) is due are re-evaluated in Postgres, where they become READY or are re-indexed
 * with a later wake time. Returns the sleep until the next entry falls due.
 */
export async function promoteDue(core: Core): Promise<number> {
  const now = Date.now();
  const due = await core.index.dueDelayed(now, BATCH);
  if (due.length > 0) {
    await core.index.removeDelayed(due);
    await transact(core, (tx) => evaluateTasks(core, tx, due, { principal: SCHEDULER_PRINCIPAL }));
    if (due.length === BATCH) return 0;
  }
  const next = await core.index.nextDelayed();
  return next === undefined ? core.settings.idlePollMs : Math.max(0, next - Date.now());
}
