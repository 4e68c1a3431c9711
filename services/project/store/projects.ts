import type { Db } from "./db.js";

/** A project as stored. `state` is the codex.project.v1.ProjectState number. */
export interface ProjectRow {
  id: string;
  name: string;
  displayName: string;
  description: string;
  labels: Record<string, string>;
  state: number;
  createdBy: string;
  createTime: Date;
  updateTime: Date;
  archiveTime: Date | null;
  version: bigint;
}

const COLUMNS = `id, name, display_name, description, labels, state, created_by, create_time,
  update_time, archive_time, version`;
/** The same columns qualified with the `p` alias used by listProjects. */
const P_COLUMNS = COLUMNS.split(",")
  .map((c) => `p.${c.trim()}`)
  .join(", ");

type Raw = {
  id: string;
  name: string;
  display_name: string;
  description: string;
  labels: Record<string, string>;
  state: number;
  created_by: string;
  create_time: Date;
  update_time: Date;
  archive_time: Date | null;
  version: bigint;
};

function fromRaw(r: Raw): ProjectRow {
  return {
    id: r.id,
    name: r.name,
    displayName: r.display_name,
    description: r.description,
    labels: r.labels,
    state: r.state,
    createdBy: r.created_by,
    createTime: r.create_time,
    updateTime: r.update_time,
    archiveTime: r.archive_time,
    version: r.version,
  };
}

export async function insertProject(db: Db, p: ProjectRow): Promise<void> {
  await db.query(`INSERT INTO projects (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, [
    p.id,
    p.name,
    p.displayName,
    p.description,
    JSON.stringify(p.labels),
    p.state,
    p.createdBy,
    p.createTime,
    p.updateTime,
    p.archiveTime,
    p.version,
  ]);
}

/** Reads a project; `lock` takes a row lock that serializes changes to it and its children. */
export async function getProject(db: Db, id: string, lock = false): Promise<ProjectRow | undefined> {
  const { rows } = await db.query<Raw>(
    `SELECT ${COLUMNS} FROM projects WHERE id = $1${lock ? " FOR UPDATE" : ""}`,
    [id],
  );
  return rows[0] && fromRaw(rows[0]);
}

export async function nameTaken(db: Db, name: string): Promise<boolean> {
  const { rows } = await db.query("SELECT 1 FROM projects WHERE name = $1", [name]);
  return rows.length > 0;
}

/** ACTIVE projects a principal created, for the per-principal limit. */
export async function countActiveCreatedBy(db: Db, principalId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM projects WHERE created_by = $1 AND state = 1",
    [principalId],
  );
  return rows[0]?.n ?? 0;
}

/** Writes the mutable fields and state of a project, bumping its version. */
export async function saveProject(db: Db, p: ProjectRow): Promise<void> {
  await db.query(
    `UPDATE projects SET display_name = $2, description = $3, labels = $4, state = $5,
       update_time = $6, archive_time = $7, version = $8
     WHERE id = $1`,
    [
      p.id,
      p.displayName,
      p.description,
      JSON.stringify(p.labels),
      p.state,
      p.updateTime,
      p.archiveTime,
      p.version,
    ],
  );
}

/** Filters of ListProjects. `visibleTo` limits results to these ids (undefined: every project). */
export interface ProjectQuery {
  memberId?: string;
  visibleIds?: readonly string[];
  state: number;
  labels: Record<string, string>;
  namePrefix: string;
  afterName: string | undefined;
  limit: number;
}

/**
 * One page of projects ordered by name (unique, so the keyset is exact). `memberId` keeps
 * projects the principal is a member of; `visibleIds` keeps an explicit id set (API keys).
 */
export async function listProjects(db: Db, q: ProjectQuery): Promise<ProjectRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (q.memberId !== undefined) {
    where.push(
      `EXISTS (SELECT 1 FROM members m WHERE m.project_id = p.id AND m.principal_id = ${arg(q.memberId)})`,
    );
  }
  if (q.visibleIds !== undefined) where.push(`p.id = ANY(${arg(q.visibleIds)}::uuid[])`);
  if (q.state !== 0) where.push(`p.state = ${arg(q.state)}`);
  if (Object.keys(q.labels).length > 0) where.push(`p.labels @> ${arg(JSON.stringify(q.labels))}::jsonb`);
  // Names are [a-z0-9-] only (validated), so the prefix holds no LIKE wildcards.
  if (q.namePrefix !== "") where.push(`p.name LIKE ${arg(`${q.namePrefix}%`)}`);
  if (q.afterName !== undefined) where.push(`p.name > ${arg(q.afterName)}`);
  const sql = `SELECT ${P_COLUMNS} FROM projects p
    ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
    ORDER BY p.name LIMIT ${arg(q.limit)}`;
  const { rows } = await db.query<Raw>(sql, args);
  return rows.map(fromRaw);
}
