import { type Db, num } from "./db.js";

/** Metadata of a verified artifact; the bytes live in the Object Store under `objectName`. */
export interface ArtifactRow {
  id: string;
  workItemId: string;
  projectId: string;
  runId: string;
  name: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
  objectName: string;
  createdBy: string;
  createTime: Date;
}

const COLUMNS =
  "id, work_item_id, project_id, run_id, name, content_type, size_bytes, sha256, object_name, created_by, create_time";

function fromRow(r: Record<string, unknown>): ArtifactRow {
  return {
    id: r.id as string,
    workItemId: r.work_item_id as string,
    projectId: r.project_id as string,
    runId: r.run_id as string,
    name: r.name as string,
    contentType: r.content_type as string,
    sizeBytes: num(r.size_bytes),
    sha256: r.sha256 as string,
    objectName: r.object_name as string,
    createdBy: r.created_by as string,
    createTime: r.create_time as Date,
  };
}

/** Inserts unless (work item, run, name) exists; returns the row that is stored afterwards. */
export async function insertArtifact(
  db: Db,
  a: ArtifactRow,
): Promise<{ row: ArtifactRow; inserted: boolean }> {
  const res = await db.query(
    `INSERT INTO artifacts (${COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)
     ON CONFLICT (work_item_id, run_id, name) DO NOTHING RETURNING ${COLUMNS}`,
    [
      a.id,
      a.workItemId,
      a.projectId,
      a.runId,
      a.name,
      a.contentType,
      a.sizeBytes,
      a.sha256,
      a.objectName,
      a.createdBy,
      a.createTime,
    ],
  );
  if (res.rows[0]) return { row: fromRow(res.rows[0]), inserted: true };
  const existing = await findArtifact(db, a.workItemId, a.runId, a.name);
  if (!existing) throw new Error("artifact conflict without a conflicting row");
  return { row: existing, inserted: false };
}

export async function findArtifact(
  db: Db,
  workItemId: string,
  runId: string,
  name: string,
): Promise<ArtifactRow | undefined> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM artifacts WHERE work_item_id = $1 AND run_id = $2 AND name = $3`,
    [workItemId, runId, name],
  );
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function getArtifact(db: Db, id: string): Promise<ArtifactRow | undefined> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM artifacts WHERE id = $1`, [id]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

export async function countArtifacts(db: Db, workItemId: string): Promise<number> {
  const { rows } = await db.query("SELECT count(*)::int AS n FROM artifacts WHERE work_item_id = $1", [
    workItemId,
  ]);
  return num(rows[0]?.n ?? 0);
}

export interface ArtifactFilter {
  workItemId: string;
  runId: string;
  /** undefined = every project. */
  projectIds: string[] | undefined;
  after?: { createTime: Date; name: string; id: string };
  limit: number;
}

/** Ordered by create_time, then name (then id, to break ties). */
export async function listArtifacts(db: Db, f: ArtifactFilter): Promise<ArtifactRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (f.workItemId) where.push(`work_item_id = ${arg(f.workItemId)}::uuid`);
  if (f.runId) where.push(`run_id = ${arg(f.runId)}`);
  if (f.projectIds) where.push(`project_id = ANY(${arg(f.projectIds)}::text[])`);
  if (f.after) {
    where.push(
      `(create_time, name, id) > (${arg(f.after.createTime)}, ${arg(f.after.name)}, ${arg(f.after.id)}::uuid)`,
    );
  }
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM artifacts WHERE ${where.join(" AND ")} ORDER BY create_time, name, id LIMIT ${arg(f.limit)}`,
    args,
  );
  return rows.map(fromRow);
}
