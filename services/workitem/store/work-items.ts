import type { WorkItemState } from "../domain/state-machine.js";
import { type Db, num } from "./db.js";

export type ApprovalStatusName = "NOT_REQUIRED" | "PENDING" | "APPROVED" | "REJECTED" | "EXPIRED";

/** A work item as stored. `version` drives the etag and the events' aggregate_version. */
export interface WorkItemRow {
  id: string;
  projectId: string;
  title: string;
  description: string;
  kind: string;
  labels: Record<string, string>;
  state: WorkItemState;
  stateReason: string;
  /** The state an item was BLOCKED from, so unblocking restores it. */
  blockedFrom: WorkItemState | null;
  environment: string;
  recipeVersion: number;
  risky: boolean;
  riskReasons: string[];
  approvalStatus: ApprovalStatusName;
  approvalRequestId: string | null;
  reviewRequired: boolean;
  taskId: string;
  createdBy: string;
  createTime: Date;
  updateTime: Date;
  stateChangeTime: Date;
  version: number;
}

const COLUMNS = `id, project_id, title, description, kind, labels, state, state_reason, blocked_from, environment,
  recipe_version, risky, risk_reasons, approval_status, approval_request_id, review_required, task_id,
  created_by, create_time, update_time, state_change_time, version`;

type Raw = Record<string, unknown>;

export function fromRow(r: Raw): WorkItemRow {
  return {
    id: r.id as string,
    projectId: r.project_id as string,
    title: r.title as string,
    description: r.description as string,
    kind: r.kind as string,
    labels: r.labels as Record<string, string>,
    state: r.state as WorkItemState,
    stateReason: r.state_reason as string,
    blockedFrom: (r.blocked_from as WorkItemState | null) ?? null,
    environment: r.environment as string,
    recipeVersion: num(r.recipe_version),
    risky: r.risky as boolean,
    riskReasons: r.risk_reasons as string[],
    approvalStatus: r.approval_status as ApprovalStatusName,
    approvalRequestId: (r.approval_request_id as string | null) ?? null,
    reviewRequired: r.review_required as boolean,
    taskId: r.task_id as string,
    createdBy: r.created_by as string,
    createTime: r.create_time as Date,
    updateTime: r.update_time as Date,
    stateChangeTime: r.state_change_time as Date,
    version: num(r.version),
  };
}

export async function insertWorkItem(db: Db, w: WorkItemRow): Promise<void> {
  await db.query(
    `INSERT INTO work_items (${COLUMNS})
     VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)`,
    [
      w.id,
      w.projectId,
      w.title,
      w.description,
      w.kind,
      JSON.stringify(w.labels),
      w.state,
      w.stateReason,
      w.blockedFrom,
      w.environment,
      w.recipeVersion,
      w.risky,
      JSON.stringify(w.riskReasons),
      w.approvalStatus,
      w.approvalRequestId,
      w.reviewRequired,
      w.taskId,
      w.createdBy,
      w.createTime,
      w.updateTime,
      w.stateChangeTime,
      w.version,
    ],
  );
}

/** Reads an item; `lock` takes the row lock every change of the item serializes on. */
export async function getWorkItem(db: Db, id: string, lock = false): Promise<WorkItemRow | undefined> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM work_items WHERE id = $1${lock ? " FOR UPDATE" : ""}`,
    [id],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/**
 * Writes every mutable field of `w` and bumps its version. Call with the row read under lock
 * in the same transaction; returns the stored row (new version).
 */
export async function saveWorkItem(db: Db, w: WorkItemRow): Promise<WorkItemRow> {
  const { rows } = await db.query(
    `UPDATE work_items SET title = $2, description = $3, kind = $4, labels = $5, state = $6, state_reason = $7,
       blocked_from = $8, environment = $9, recipe_version = $10, risky = $11, risk_reasons = $12,
       approval_status = $13, approval_request_id = $14, review_required = $15, task_id = $16,
       update_time = $17, state_change_time = $18, version = version + 1
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [
      w.id,
      w.title,
      w.description,
      w.kind,
      JSON.stringify(w.labels),
      w.state,
      w.stateReason,
      w.blockedFrom,
      w.environment,
      w.recipeVersion,
      w.risky,
      JSON.stringify(w.riskReasons),
      w.approvalStatus,
      w.approvalRequestId,
      w.reviewRequired,
      w.taskId,
      w.updateTime,
      w.stateChangeTime,
    ],
  );
  if (!rows[0]) throw new Error(`work item ${w.id} vanished while locked`);
  return fromRow(rows[0]);
}

export async function deleteWorkItem(db: Db, id: string): Promise<void> {
  await db.query("DELETE FROM work_items WHERE id = $1", [id]);
}

/** Typed list filters; every present field restricts (AND). */
export interface WorkItemFilter {
  /** undefined = every project; otherwise only these. */
  projectIds: string[] | undefined;
  states: string[];
  kinds: string[];
  /** key → value, or key → undefined for "label present". */
  labels: [string, string | undefined][];
  environment: string;
  approvalStatuses: string[];
  /** Keyset cursor: the last item of the previous page. */
  after?: { createTime: Date; id: string };
  limit: number;
}

export async function listWorkItems(db: Db, f: WorkItemFilter): Promise<WorkItemRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (f.projectIds) where.push(`project_id = ANY(${arg(f.projectIds)}::text[])`);
  if (f.states.length) where.push(`state = ANY(${arg(f.states)}::text[])`);
  if (f.kinds.length) where.push(`kind = ANY(${arg(f.kinds)}::text[])`);
  if (f.environment) where.push(`environment = ${arg(f.environment)}`);
  if (f.approvalStatuses.length) where.push(`approval_status = ANY(${arg(f.approvalStatuses)}::text[])`);
  for (const [key, value] of f.labels) {
    where.push(
      value === undefined
        ? `labels ? ${arg(key)}`
        : `labels @> ${arg(JSON.stringify({ [key]: value }))}::jsonb`,
    );
  }
  if (f.after) where.push(`(create_time, id) < (${arg(f.after.createTime)}, ${arg(f.after.id)}::uuid)`);
  const sql = `SELECT ${COLUMNS} FROM work_items ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
    ORDER BY create_time DESC, id DESC LIMIT ${arg(f.limit)}`;
  const { rows } = await db.query(sql, args);
  return rows.map(fromRow);
}

/** Items of a project that are still open (not DONE or CANCELLED), for risk re-evaluation. */
export async function openItemIds(db: Db, projectId: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    "SELECT id FROM work_items WHERE project_id = $1 AND state NOT IN ('DONE', 'CANCELLED') ORDER BY id",
    [projectId],
  );
  return rows.map((r) => r.id);
}
