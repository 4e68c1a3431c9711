import type { Db } from "./db.js";

/** A membership as stored; `principalType` and `role` are the proto enum numbers. */
export interface MemberRow {
  projectId: string;
  principalId: string;
  principalType: number;
  role: number;
  addedBy: string;
  addTime: Date;
  updateTime: Date;
  version: bigint;
}

const COLUMNS = "project_id, principal_id, principal_type, role, added_by, add_time, update_time, version";

type Raw = {
  project_id: string;
  principal_id: string;
  principal_type: number;
  role: number;
  added_by: string;
  add_time: Date;
  update_time: Date;
  version: bigint;
};

function fromRaw(r: Raw): MemberRow {
  return {
    projectId: r.project_id,
    principalId: r.principal_id,
    principalType: r.principal_type,
    role: r.role,
    addedBy: r.added_by,
    addTime: r.add_time,
    updateTime: r.update_time,
    version: r.version,
  };
}

export async function insertMember(db: Db, m: MemberRow): Promise<void> {
  await db.query(`INSERT INTO members (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
    m.projectId,
    m.principalId,
    m.principalType,
    m.role,
    m.addedBy,
    m.addTime,
    m.updateTime,
    m.version,
  ]);
}

export async function getMember(
  db: Db,
  projectId: string,
  principalId: string,
): Promise<MemberRow | undefined> {
  const { rows } = await db.query<Raw>(
    `SELECT ${COLUMNS} FROM members WHERE project_id = $1 AND principal_id = $2`,
    [projectId, principalId],
  );
  return rows[0] && fromRaw(rows[0]);
}

export async function updateMemberRole(db: Db, m: MemberRow): Promise<void> {
  await db.query(
    "UPDATE members SET role = $3, update_time = $4, version = $5 WHERE project_id = $1 AND principal_id = $2",
    [m.projectId, m.principalId, m.role, m.updateTime, m.version],
  );
}

export async function deleteMember(db: Db, projectId: string, principalId: string): Promise<void> {
  await db.query("DELETE FROM members WHERE project_id = $1 AND principal_id = $2", [projectId, principalId]);
}

/** Members holding `role` in the project (used for the last-OWNER rule). */
export async function countRole(db: Db, projectId: string, role: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM members WHERE project_id = $1 AND role = $2",
    [projectId, role],
  );
  return rows[0]?.n ?? 0;
}

export async function countMembers(db: Db, projectId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM members WHERE project_id = $1",
    [projectId],
  );
  return rows[0]?.n ?? 0;
}

/** Filters of ListMembers; `projectId` undefined lists across projects ("-"). */
export interface MemberQuery {
  projectId: string | undefined;
  principalId: string;
  role: number;
  principalType: number;
  after: readonly [string, string] | undefined;
  limit: number;
}

/** One page ordered by (project_id, principal_id), the primary key, so the keyset is exact. */
export async function listMembers(db: Db, q: MemberQuery): Promise<MemberRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (q.projectId !== undefined) where.push(`project_id = ${arg(q.projectId)}`);
  if (q.principalId !== "") where.push(`principal_id = ${arg(q.principalId)}`);
  if (q.role !== 0) where.push(`role = ${arg(q.role)}`);
  if (q.principalType !== 0) where.push(`principal_type = ${arg(q.principalType)}`);
  if (q.after) where.push(`(project_id, principal_id) > (${arg(q.after[0])}::uuid, ${arg(q.after[1])})`);
  const { rows } = await db.query<Raw>(
    `SELECT ${COLUMNS} FROM members ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY project_id, principal_id LIMIT ${arg(q.limit)}`,
    args,
  );
  return rows.map(fromRaw);
}
