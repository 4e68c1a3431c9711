import type { Db } from "./db.js";

/** Work item states the scheduler moves items to (workitem.v1 WorkItemState names). */
export type WorkItemStateName =
  | "QUEUED"
  | "IN_PROGRESS"
  | "REVIEW"
  | "DONE"
  | "FAILED"
  | "APPROVED"
  | "BLOCKED";

/** A call owed to another service, decided in a scheduler transaction. */
export type Effect =
  | { kind: "transition"; to: WorkItemStateName; reason: string }
  | { kind: "release"; projectId: string; key: string; consumed: boolean }
  | { kind: "cancel_run"; runId: string; reason: string };

export interface EffectRow {
  seq: bigint;
  workItemId: string;
  taskId: string;
  effect: Effect;
  attempts: number;
}

/**
 * Records effects in the caller's transaction. They run after commit, in `seq` order per work
 * item (a QUEUED transition is never overtaken by the IN_PROGRESS that follows it).
 */
export async function enqueueEffects(
  db: Db,
  task: { id: string; workItemId: string },
  effects: readonly Effect[],
): Promise<void> {
  if (effects.length === 0) return;
  await db.query(
    `INSERT INTO effects (work_item_id, task_id, kind, payload)
     SELECT $1, $2, e->>'kind', e FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(e, n) ORDER BY n`,
    [task.workItemId, task.id, JSON.stringify(effects)],
  );
}

/**
 * Locks due effects that are first in line for their work item (no earlier effect of the same
 * item exists, even one locked by another replica), so two replicas never run one item's
 * effects out of order.
 */
export async function lockDueHeads(db: Db, limit: number): Promise<EffectRow[]> {
  const { rows } = await db.query<{
    seq: bigint;
    work_item_id: string;
    task_id: string;
    payload: Effect;
    attempts: number;
  }>(
    `SELECT seq, work_item_id, task_id, payload, attempts FROM effects e
      WHERE due_at <= now()
        AND NOT EXISTS (SELECT 1 FROM effects p WHERE p.work_item_id = e.work_item_id AND p.seq < e.seq)
      ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
    [limit],
  );
  return rows.map((r) => ({
    seq: BigInt(r.seq),
    workItemId: r.work_item_id,
    taskId: r.task_id,
    effect: r.payload,
    attempts: r.attempts,
  }));
}

export async function deleteEffects(db: Db, seqs: readonly bigint[]): Promise<void> {
  if (seqs.length === 0) return;
  await db.query("DELETE FROM effects WHERE seq = ANY($1::bigint[])", [seqs.map(String)]);
}

export async function postponeEffect(db: Db, seq: bigint, delayMs: number, error: string): Promise<void> {
  await db.query(
    `UPDATE effects SET attempts = attempts + 1, last_error = $2,
            due_at = now() + make_interval(secs => $3::float8 / 1000) WHERE seq = $1`,
    [String(seq), error.slice(0, 1000), delayMs],
  );
}

/** Milliseconds until the next effect falls due (undefined when none is waiting). */
export async function nextEffectDueMs(db: Db): Promise<number | undefined> {
  const { rows } = await db.query<{ ms: number | null }>(
    "SELECT EXTRACT(EPOCH FROM (min(due_at) - now())) * 1000 AS ms FROM effects",
  );
  const ms = rows[0]?.ms;
  return ms === null || ms === undefined ? undefined : Math.max(0, Number(ms));
}
