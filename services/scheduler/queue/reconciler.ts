import type { Core } from "../core.js";
import type { DelayedEntry, ReadyEntry } from "./redis-index.js";

/**
 * Rebuilds the Redis index from Postgres, the truth, and hands back claims of crashed
 * dispatchers. Runs at start, every RECONCILE_INTERVAL, and as soon as a loop notices the
 * index is gone (FLUSHALL, failover): so losing Redis delays work, never loses it.
 *
 * - READY tasks go back into their ready shard with their original score (queue order holds);
 * - WAITING tasks with nothing left to wait for but time (or nothing at all) go into the
 *   delayed index, where the promoter re-evaluates them;
 * - DISPATCHED tasks whose claim expired before a run was recorded become READY again with
 *   the same attempt, so the repeated EnqueueRun and quota reservation are idempotent replays.
 */
export async function rebuildIndex(
  core: Core,
): Promise<{ ready: number; delayed: number; reclaimed: number }> {
  const readyEntries: ReadyEntry[] = [];
  const delayedEntries: DelayedEntry[] = [];
  const reclaimed = await core.pool.query<{ id: string; priority: number; ready_time: Date }>(
    `UPDATE tasks SET state = 'READY', attempt = attempt - 1, dispatch_token = NULL, dispatch_deadline = NULL,
            ready_time = COALESCE(ready_time, now()), update_time = now(), version = version + 1
      WHERE state = 'DISPATCHED' AND dispatch_token IS NOT NULL AND dispatch_deadline < now()
      RETURNING id, priority, ready_time`,
  );
  const ready = await core.pool.query<{ id: string; priority: number; ready_time: Date }>(
    "SELECT id, priority, ready_time FROM tasks WHERE state = 'READY'",
  );
  for (const r of ready.rows) readyEntries.push({ id: r.id, priority: r.priority, readyTime: r.ready_time });
  const delayed = await core.pool.query<{ id: string; wake: Date }>(
    `SELECT id, GREATEST(not_before, backoff_until, quota_until, now()) AS wake FROM tasks t
      WHERE state = 'WAITING' AND NOT approval_pending
        AND NOT EXISTS (SELECT 1 FROM task_dependencies d
                          LEFT JOIN work_item_outcomes o ON o.work_item_id = d.depends_on
                         WHERE d.task_id = t.id AND COALESCE(o.outcome, '') <> 'DONE')`,
  );
  for (const r of delayed.rows) delayedEntries.push({ id: r.id, wakeAt: r.wake });
  await core.index.addDelayed(delayedEntries);
  await core.index.addReady(readyEntries);
  await core.index.markBuilt();
  if (delayedEntries.length > 0) core.wake.promoter();
  return { ready: ready.rows.length, delayed: delayed.rows.length, reclaimed: reclaimed.rowCount ?? 0 };
}
