import type { ApprovalState, DecisionKind } from "../domain/approval.js";
import { type Db, num } from "./db.js";

export interface DecisionRow {
  approver: string;
  decision: DecisionKind;
  reason: string;
  time: Date;
}

/** An approval request with its decisions (oldest first). */
export interface ApprovalRow {
  id: string;
  workItemId: string;
  projectId: string;
  recipeVersion: number;
  requestedBy: string;
  /** The principal whose change opened the request; counts as the requester for four eyes. */
  onBehalfOf: string;
  reason: string;
  state: ApprovalState;
  requiredApprovals: number;
  approverRoles: string[];
  createTime: Date;
  expireTime: Date;
  resolveTime: Date | null;
  version: number;
  decisions: DecisionRow[];
}

const COLUMNS = `id, work_item_id, project_id, recipe_version, requested_by, on_behalf_of, reason, state,
  required_approvals, approver_roles, create_time, expire_time, resolve_time, version`;

function fromRow(r: Record<string, unknown>, decisions: DecisionRow[]): ApprovalRow {
  return {
    id: r.id as string,
    workItemId: r.work_item_id as string,
    projectId: r.project_id as string,
    recipeVersion: num(r.recipe_version),
    requestedBy: r.requested_by as string,
    onBehalfOf: r.on_behalf_of as string,
    reason: r.reason as string,
    state: r.state as ApprovalState,
    requiredApprovals: num(r.required_approvals),
    approverRoles: r.approver_roles as string[],
    createTime: r.create_time as Date,
    expireTime: r.expire_time as Date,
    resolveTime: (r.resolve_time as Date | null) ?? null,
    version: num(r.version),
    decisions,
  };
}

async function decisionsOf(db: Db, ids: string[]): Promise<Map<string, DecisionRow[]>> {
  const out = new Map<string, DecisionRow[]>();
  if (ids.length === 0) return out;
  const { rows } = await db.query(
    `SELECT approval_request_id, approver, decision, reason, decide_time FROM approval_decisions
      WHERE approval_request_id = ANY($1::uuid[]) ORDER BY decide_time, approver`,
    [ids],
  );
  for (const r of rows) {
    const list = out.get(r.approval_request_id) ?? [];
    list.push({ approver: r.approver, decision: r.decision, reason: r.reason, time: r.decide_time });
    out.set(r.approval_request_id, list);
  }
  return out;
}

export async function insertApproval(db: Db, a: ApprovalRow): Promise<void> {
  await db.query(
    `INSERT INTO approval_requests (${COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
    [
      a.id,
      a.workItemId,
      a.projectId,
      a.recipeVersion,
      a.requestedBy,
      a.onBehalfOf,
      a.reason,
      a.state,
      a.requiredApprovals,
      a.approverRoles,
      a.createTime,
      a.expireTime,
      a.resolveTime,
      a.version,
    ],
  );
}

export async function getApproval(db: Db, id: string, lock = false): Promise<ApprovalRow | undefined> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM approval_requests WHERE id = $1${lock ? " FOR UPDATE" : ""}`,
    [id],
  );
  if (!rows[0]) return undefined;
  return fromRow(rows[0], (await decisionsOf(db, [id])).get(id) ?? []);
}

/** The item's PENDING request, if any (at most one, enforced by a unique index). */
export async function pendingApprovalOf(db: Db, workItemId: string): Promise<ApprovalRow | undefined> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM approval_requests WHERE work_item_id = $1 AND state = 'PENDING' FOR UPDATE`,
    [workItemId],
  );
  if (!rows[0]) return undefined;
  return fromRow(rows[0], (await decisionsOf(db, [rows[0].id])).get(rows[0].id) ?? []);
}

/** Records one decision; false when this approver already has one on the request. */
export async function insertDecision(db: Db, requestId: string, d: DecisionRow): Promise<boolean> {
  const res = await db.query(
    `INSERT INTO approval_decisions (approval_request_id, approver, decision, reason, decide_time)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
    [requestId, d.approver, d.decision, d.reason, d.time],
  );
  return (res.rowCount ?? 0) === 1;
}

/** Moves a request to a new state (resolving it unless PENDING) and bumps its version. */
export async function setApprovalState(db: Db, id: string, state: ApprovalState, at: Date): Promise<void> {
  await db.query(
    `UPDATE approval_requests SET state = $2, resolve_time = CASE WHEN $2 = 'PENDING' THEN NULL ELSE $3::timestamptz END,
       version = version + 1 WHERE id = $1`,
    [id, state, at],
  );
}

export async function bumpApproval(db: Db, id: string): Promise<void> {
  await db.query("UPDATE approval_requests SET version = version + 1 WHERE id = $1", [id]);
}

export interface ApprovalFilter {
  projectId: string;
  workItemId: string;
  /** undefined = every project. */
  projectIds: string[] | undefined;
  states: string[];
  /** Only requests this actor, holding `role` in the project, may still decide on. */
  actionableBy?: { actor: string; role: string; now: Date };
  after?: { createTime: Date; id: string };
  limit: number;
}

export async function listApprovals(db: Db, f: ApprovalFilter): Promise<ApprovalRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (f.projectId) where.push(`project_id = ${arg(f.projectId)}`);
  if (f.workItemId) where.push(`work_item_id = ${arg(f.workItemId)}::uuid`);
  if (f.projectIds) where.push(`project_id = ANY(${arg(f.projectIds)}::text[])`);
  if (f.states.length) where.push(`state = ANY(${arg(f.states)}::text[])`);
  if (f.actionableBy) {
    const a = f.actionableBy;
    const actor = arg(a.actor);
    where.push(`state = 'PENDING' AND expire_time > ${arg(a.now)} AND requested_by <> ${actor}
      AND on_behalf_of <> ${actor} AND ${arg(a.role)} = ANY(approver_roles)
      AND NOT EXISTS (SELECT 1 FROM approval_decisions d WHERE d.approval_request_id = id AND d.approver = ${actor})`);
  }
  if (f.after) where.push(`(create_time, id) < (${arg(f.after.createTime)}, ${arg(f.after.id)}::uuid)`);
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM approval_requests ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY create_time DESC, id DESC LIMIT ${arg(f.limit)}`,
    args,
  );
  const decisions = await decisionsOf(
    db,
    rows.map((r) => r.id as string),
  );
  return rows.map((r) => fromRow(r, decisions.get(r.id) ?? []));
}

/** PENDING requests whose deadline passed, oldest first, for the expiry sweeper. */
export async function expiredPendingIds(db: Db, now: Date, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM approval_requests WHERE state = 'PENDING' AND expire_time <= $1 ORDER BY expire_time LIMIT $2`,
    [now, limit],
  );
  return rows.map((r) => r.id);
}
