/**
 * Batched run changes at the start of a run's life: enqueue, assign, start. Each is one
 * multi-row statement, conditional on the row's state (and fencing token), so the database
 * stays the arbiter even with several manager replicas.
 */
import type pg from "pg";
import type { Origin } from "../events/origin.js";
import { runAssigned, runEnqueued, runStarted } from "../events/run-events.js";
import { bigints, type ChangedRow, type LeasedItem, leasedOutcomes } from "./batch-support.js";
import type { BatchKind, Outcome } from "./group-commit.js";
import type { RunRow } from "./runs.js";

export interface EnqueueItem {
  id: string;
  taskId: string;
  attempt: number;
  workItemId: string;
  projectId: string;
  requestId: string;
  priority: number;
  selector: Record<string, string>;
  tools: { name: string; version: string }[];
  workItem: Uint8Array;
  traceId: string;
  origin: Origin;
}

/** Creates PENDING runs; an existing (task_id, attempt) is returned as it is. */
export const enqueueKind: BatchKind<EnqueueItem, { row: RunRow; created: boolean }> = {
  name: "enqueue",
  async apply(ctx, items) {
    const col = <T>(f: (i: EnqueueItem) => T) => items.map(f);
    const { rows } = await ctx.client.query<RunRow>(
      `INSERT INTO runs (id, task_id, attempt, work_item_id, project_id, request_id, priority,
                         agent_selector, required_tools, work_item, state, trace_id, created_at)
       SELECT u.id, u.task_id, u.attempt, u.work_item_id, u.project_id, u.request_id, u.priority,
              u.sel, u.tools, u.wi, 1, u.trace_id, $12
       FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::int[],
                   $8::jsonb[], $9::jsonb[], $10::bytea[], $11::text[])
            AS u(id, task_id, attempt, work_item_id, project_id, request_id, priority, sel, tools, wi, trace_id)
       ON CONFLICT (task_id, attempt) DO NOTHING
       RETURNING *`,
      [
        col((i) => i.id),
        col((i) => i.taskId),
        col((i) => i.attempt),
        col((i) => i.workItemId),
        col((i) => i.projectId),
        col((i) => i.requestId),
        col((i) => i.priority),
        col((i) => JSON.stringify(i.selector)),
        col((i) => JSON.stringify(i.tools)),
        col((i) => Buffer.from(i.workItem)),
        col((i) => i.traceId),
        ctx.now,
      ],
    );
    const created = new Map(rows.map((r) => [r.id, r]));
    const others = items.filter((i) => !created.has(i.id));
    const existing = new Map<string, RunRow>();
    if (others.length > 0) {
      const found = await ctx.client.query<RunRow>(
        `SELECT r.* FROM runs r, unnest($1::text[], $2::int[]) AS u(task_id, attempt)
         WHERE r.task_id = u.task_id AND r.attempt = u.attempt`,
        [others.map((i) => i.taskId), others.map((i) => i.attempt)],
      );
      for (const r of found.rows) existing.set(`${r.task_id}\u0000${r.attempt}`, r);
    }
    return items.map((item): Outcome<{ row: RunRow; created: boolean }> => {
      const row = created.get(item.id);
      if (row) {
        ctx.stage(runEnqueued(row, item.origin, ctx.now));
        return { ok: true, value: { row, created: true } };
      }
      const prior = existing.get(`${item.taskId}\u0000${item.attempt}`);
      return prior
        ? { ok: true, value: { row: prior, created: false } }
        : { ok: false, error: new Error(`run of task ${item.taskId} attempt ${item.attempt} vanished`) };
    });
  },
};

export interface AssignItem {
  runId: string;
  agentId: string;
  leaseTtlMs: number;
  origin: Origin;
}

/** Leases PENDING runs to agents with a fresh fencing token; undefined when no longer PENDING. */
export const assignKind: BatchKind<AssignItem, RunRow | undefined> = {
  name: "assign",
  async apply(ctx, items) {
    const expiries = items.map((i) => new Date(ctx.now.getTime() + i.leaseTtlMs));
    const { rows } = await ctx.client.query<RunRow>(
      `UPDATE runs r SET state = 2, agent_id = u.agent_id, fencing_token = r.fencing_token + 1,
              lease_expire_at = u.expire_at, assigned_at = $4, started_at = NULL, current_step = 0,
              version = r.version + 1
       FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS u(id, agent_id, expire_at)
       WHERE r.id = u.id AND r.state = 1
       RETURNING r.*`,
      [items.map((i) => i.runId), items.map((i) => i.agentId), expiries, ctx.now],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    return items.map((item) => {
      const row = byId.get(item.runId);
      if (row)
        ctx.stage(
          runAssigned(row, row.lease_expire_at?.getTime() ?? ctx.now.getTime(), item.origin, ctx.now),
        );
      return { ok: true, value: row };
    });
  },
};

export interface StartItem extends LeasedItem {
  step: number;
  origin: Origin;
}

/** ASSIGNED -> RUNNING (RunStarted), or a step change of a RUNNING run (no event). */
export const startKind: BatchKind<StartItem, RunRow> = {
  name: "start",
  async apply(ctx, items) {
    const matched = await startRuns(ctx.client, items, ctx.now);
    for (const item of items) {
      const row = matched.get(item.runId);
      if (row && row.prev_state === 2) ctx.stage(runStarted(row, item.origin, ctx.now));
    }
    return leasedOutcomes(
      ctx,
      items,
      matched,
      (row) => row,
      (row, item) =>
        row.state === 3 && row.fencing_token === item.token && row.agent_id === item.agentId
          ? row
          : undefined,
    );
  },
};

/** The start statement, shared with log appends (which also start an ASSIGNED run). */
export async function startRuns(
  client: pg.PoolClient,
  items: readonly (LeasedItem & { step: number | undefined })[],
  now: Date,
): Promise<Map<string, ChangedRow>> {
  if (items.length === 0) return new Map();
  const { rows } = await client.query<ChangedRow>(
    `WITH old AS (SELECT id, state FROM runs WHERE id = ANY($1::uuid[]) FOR UPDATE)
     UPDATE runs r SET state = 3,
            started_at = CASE WHEN r.state = 2 THEN $5 ELSE r.started_at END,
            current_step = COALESCE(u.step, r.current_step),
            version = r.version + CASE WHEN r.state = 2 THEN 1 ELSE 0 END
     FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::int[]) AS u(id, agent_id, token, step), old
     WHERE r.id = u.id AND old.id = u.id AND r.agent_id = u.agent_id AND r.fencing_token = u.token
       AND r.state IN (2, 3) AND (r.state = 2 OR r.current_step IS DISTINCT FROM COALESCE(u.step, r.current_step))
     RETURNING r.*, old.state AS prev_state`,
    [
      items.map((i) => i.runId),
      items.map((i) => i.agentId),
      bigints(items.map((i) => i.token)),
      items.map((i) => i.step ?? null),
      now,
    ],
  );
  return new Map(rows.map((r) => [r.id, r]));
}
