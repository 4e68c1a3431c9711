import type { Db } from "./db.js";

/** One immutable vision version. */
export interface VisionRow {
  projectId: string;
  version: bigint;
  problem: string;
  constraints: string;
  successCriteria: string;
  author: string;
  createTime: Date;
}

const COLUMNS = "project_id, version, problem, constraints, success_criteria, author, create_time";

type Raw = {
  project_id: string;
  version: bigint;
  problem: string;
  constraints: string;
  success_criteria: string;
  author: string;
  create_time: Date;
};

function fromRaw(r: Raw): VisionRow {
  return {
    projectId: r.project_id,
    version: r.version,
    problem: r.problem,
    constraints: r.constraints,
    successCriteria: r.success_criteria,
    author: r.author,
    createTime: r.create_time,
  };
}

export async function insertVision(db: Db, v: VisionRow): Promise<void> {
  await db.query(`INSERT INTO visions (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
    v.projectId,
    v.version,
    v.problem,
    v.constraints,
    v.successCriteria,
    v.author,
    v.createTime,
  ]);
}

/** The current (highest) version number, 0n when none was submitted. */
export async function currentVisionVersion(db: Db, projectId: string): Promise<bigint> {
  const { rows } = await db.query<{ v: bigint | null }>(
    "SELECT max(version) AS v FROM visions WHERE project_id = $1",
    [projectId],
  );
  return rows[0]?.v ?? 0n;
}

/** A given version, or the current one when `version` is 0n. */
export async function getVision(db: Db, projectId: string, version: bigint): Promise<VisionRow | undefined> {
  const { rows } =
    version === 0n
      ? await db.query<Raw>(
          `SELECT ${COLUMNS} FROM visions WHERE project_id = $1 ORDER BY version DESC LIMIT 1`,
          [projectId],
        )
      : await db.query<Raw>(`SELECT ${COLUMNS} FROM visions WHERE project_id = $1 AND version = $2`, [
          projectId,
          version,
        ]);
  return rows[0] && fromRaw(rows[0]);
}

/** Versions newest first, strictly below `before` when given. */
export async function listVisions(
  db: Db,
  projectId: string,
  before: bigint | undefined,
  limit: number,
): Promise<VisionRow[]> {
  const { rows } = await db.query<Raw>(
    `SELECT ${COLUMNS} FROM visions WHERE project_id = $1 AND ($2::bigint IS NULL OR version < $2)
     ORDER BY version DESC LIMIT $3`,
    [projectId, before ?? null, limit],
  );
  return rows.map(fromRaw);
}
