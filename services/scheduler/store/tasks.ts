import type { DependencyFailurePolicy } from "../domain/schedule-spec.js";
import type { Db } from "./db.js";

export type TaskState = "WAITING" | "READY" | "DISPATCHED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED";
export const TERMINAL_STATES: readonly TaskState[] = ["SUCCEEDED", "FAILED", "CANCELLED"];
export type Outcome = "" | "DONE" | "FAILED" | "CANCELLED";

/** One row of `tasks`, as the code sees it. */
export interface TaskRow {
  id: string;
  workItemId: string;
  projectId: string;
  state: TaskState;
  priority: number;
  notBefore: Date | null;
  maxRetries: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  jitter: "FULL" | "NONE";
  dependencyFailurePolicy: DependencyFailurePolicy;
  agentSelector: Record<string, string>;
  attempt: number;
  failures: number;
  approvalPending: boolean;
  backoffUntil: Date | null;
  quotaUntil: Date | null;
  quotaDetail: string;
  quotaLimit: string;
  reviewRequired: boolean;
  initialReservationKey: string;
  reservationKey: string;
  reservationHeld: boolean;
  dispatchToken: string | null;
  lastRunId: string;
  lastError: string;
  scheduledBy: string;
  createTime: Date;
  updateTime: Date;
  readyTime: Date | null;
  dispatchTime: Date | null;
  finishTime: Date | null;
  version: bigint;
}

/** Every column, for RETURNING and SELECT. */
export const TASK_COLUMNS = `id, work_item_id, project_id, state, priority, not_before, max_retries, backoff_base_ms,
  backoff_cap_ms, jitter, dependency_failure_policy, agent_selector, attempt, failures, approval_pending,
  backoff_until, quota_until, quota_detail, quota_limit, review_required, initial_reservation_key,
  reservation_key, reservation_held, dispatch_token, last_run_id, last_error, scheduled_by, create_time,
  update_time, ready_time, dispatch_time, finish_time, version`;

export function toTaskRow(r: Record<string, unknown>): TaskRow {
  return {
    id: r.id as string,
    workItemId: r.work_item_id as string,
    projectId: r.project_id as string,
    state: r.state as TaskState,
    priority: r.priority as number,
    notBefore: (r.not_before as Date | null) ?? null,
    maxRetries: r.max_retries as number,
    backoffBaseMs: Number(r.backoff_base_ms),
    backoffCapMs: Number(r.backoff_cap_ms),
    jitter: r.jitter as "FULL" | "NONE",
    dependencyFailurePolicy: r.dependency_failure_policy as DependencyFailurePolicy,
    agentSelector: (r.agent_selector as Record<string, string>) ?? {},
    attempt: r.attempt as number,
    failures: r.failures as number,
    approvalPending: r.approval_pending as boolean,
    backoffUntil: (r.backoff_until as Date | null) ?? null,
    quotaUntil: (r.quota_until as Date | null) ?? null,
    quotaDetail: r.quota_detail as string,
    quotaLimit: r.quota_limit as string,
    reviewRequired: r.review_required as boolean,
    initialReservationKey: r.initial_reservation_key as string,
    reservationKey: r.reservation_key as string,
    reservationHeld: r.reservation_held as boolean,
    dispatchToken: (r.dispatch_token as string | null) ?? null,
    lastRunId: r.last_run_id as string,
    lastError: r.last_error as string,
    scheduledBy: r.scheduled_by as string,
    createTime: r.create_time as Date,
    updateTime: r.update_time as Date,
    readyTime: (r.ready_time as Date | null) ?? null,
    dispatchTime: (r.dispatch_time as Date | null) ?? null,
    finishTime: (r.finish_time as Date | null) ?? null,
    version: BigInt(r.version as bigint),
  };
}

export async function getTask(db: Db, id: string, lock = false): Promise<TaskRow | undefined> {
  if (!isUuid(id)) return undefined;
  const { rows } = await db.query(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1${lock ? " FOR UPDATE" : ""}`,
    [id],
  );
  return rows[0] ? toTaskRow(rows[0]) : undefined;
}

export async function getTasks(db: Db, ids: readonly string[], lock = false): Promise<TaskRow[]> {
  const valid = ids.filter(isUuid);
  if (valid.length === 0) return [];
  const { rows } = await db.query(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ANY($1::uuid[]) ORDER BY id${lock ? " FOR UPDATE" : ""}`,
    [valid],
  );
  return rows.map(toTaskRow);
}

/** The work item's non-terminal task, if any. */
export async function liveTaskOf(db: Db, workItemId: string, lock = false): Promise<TaskRow | undefined> {
  const { rows } = await db.query(
    `SELECT ${TASK_COLUMNS} FROM tasks
      WHERE work_item_id = $1 AND state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')${lock ? " FOR UPDATE" : ""}`,
    [workItemId],
  );
  return rows[0] ? toTaskRow(rows[0]) : undefined;
}

/** The work item's most recent task, whatever its state. */
export async function lastTaskOf(db: Db, workItemId: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE work_item_id = $1 ORDER BY create_time DESC, id DESC LIMIT 1`,
    [workItemId],
  );
  return rows[0] ? toTaskRow(rows[0]) : undefined;
}

export async function insertTask(db: Db, t: TaskRow, dependsOn: readonly string[]): Promise<void> {
  await db.query(
    `INSERT INTO tasks (id, work_item_id, project_id, state, priority, not_before, max_retries, backoff_base_ms,
       backoff_cap_ms, jitter, dependency_failure_policy, agent_selector, approval_pending, review_required,
       initial_reservation_key, scheduled_by, create_time, update_time, ready_time)
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$17,$18)`,
    [
      t.id,
      t.workItemId,
      t.projectId,
      t.state,
      t.priority,
      t.notBefore,
      t.maxRetries,
      t.backoffBaseMs,
      t.backoffCapMs,
      t.jitter,
      t.dependencyFailurePolicy,
      JSON.stringify(t.agentSelector),
      t.approvalPending,
      t.reviewRequired,
      t.initialReservationKey,
      t.scheduledBy,
      t.createTime,
      t.readyTime,
    ],
  );
  if (dependsOn.length > 0) {
    await db.query(
      `INSERT INTO task_dependencies (task_id, depends_on, position)
       SELECT $1, d, p::int - 1 FROM unnest($2::text[]) WITH ORDINALITY AS x(d, p)`,
      [t.id, dependsOn],
    );
  }
}

/** Dependencies of tasks with their work items' outcomes, in declaration order. */
export async function dependenciesOf(
  db: Db,
  taskIds: readonly string[],
): Promise<Map<string, { workItemId: string; outcome: Outcome }[]>> {
  const out = new Map<string, { workItemId: string; outcome: Outcome }[]>();
  if (taskIds.length === 0) return out;
  const { rows } = await db.query<{ task_id: string; depends_on: string; outcome: Outcome }>(
    `SELECT d.task_id, d.depends_on, COALESCE(o.outcome, '') AS outcome
       FROM task_dependencies d LEFT JOIN work_item_outcomes o ON o.work_item_id = d.depends_on
      WHERE d.task_id = ANY($1::uuid[]) ORDER BY d.task_id, d.position`,
    [taskIds],
  );
  for (const r of rows) {
    const list = out.get(r.task_id) ?? [];
    list.push({ workItemId: r.depends_on, outcome: r.outcome });
    out.set(r.task_id, list);
  }
  return out;
}

/**
 * Dependencies (work item -> work items it waits for) of every live task in a project: the
 * edges the cycle check walks.
 */
export async function liveEdges(db: Db, projectId: string): Promise<Map<string, string[]>> {
  const { rows } = await db.query<{ work_item_id: string; depends_on: string }>(
    `SELECT t.work_item_id, d.depends_on FROM tasks t JOIN task_dependencies d ON d.task_id = t.id
      WHERE t.project_id = $1 AND t.state NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')`,
    [projectId],
  );
  const edges = new Map<string, string[]>();
  for (const r of rows) edges.set(r.work_item_id, [...(edges.get(r.work_item_id) ?? []), r.depends_on]);
  return edges;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(s: string): boolean {
  return UUID.test(s);
}
