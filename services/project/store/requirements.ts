import type { Db } from "./db.js";

/**
 * A requirements draft as stored: its lifecycle fields plus the latest revision's content.
 * `contentVersion` counts content revisions (the proto `version`); `version` counts every
 * change of the row (edits, decisions, supersession) and feeds the etag.
 */
export interface DraftRow {
  id: string;
  projectId: string;
  state: number;
  contentVersion: bigint;
  content: string;
  author: string;
  lastEditor: string;
  decidedBy: string;
  decisionReason: string;
  createTime: Date;
  updateTime: Date;
  decideTime: Date | null;
  supersededBy: string | null;
  version: bigint;
}

type Raw = {
  id: string;
  project_id: string;
  state: number;
  content_version: bigint;
  content: string;
  editor: string;
  author: string;
  decided_by: string;
  decision_reason: string;
  create_time: Date;
  update_time: Date;
  rev_time: Date;
  decide_time: Date | null;
  superseded_by: string | null;
  version: bigint;
};

/**
 * The draft joined with one revision. For an earlier revision, `update_time` is that
 * revision's time (requirements.proto, GetRequirementsRequest.version).
 */
const SELECT = `SELECT r.id, r.project_id, r.state, v.version AS content_version, v.content, v.editor,
  r.author, r.decided_by, r.decision_reason, r.create_time, r.update_time, v.create_time AS rev_time,
  r.decide_time, r.superseded_by, r.version
  FROM requirements r JOIN requirements_revisions v ON v.requirements_id = r.id`;

function fromRaw(r: Raw): DraftRow {
  return {
    id: r.id,
    projectId: r.project_id,
    state: r.state,
    contentVersion: r.content_version,
    content: r.content,
    author: r.author,
    lastEditor: r.editor,
    decidedBy: r.decided_by,
    decisionReason: r.decision_reason,
    createTime: r.create_time,
    updateTime: r.update_time,
    decideTime: r.decide_time,
    supersededBy: r.superseded_by,
    version: r.version,
  };
}

/** Inserts a new draft and its first revision. */
export async function insertDraft(db: Db, d: DraftRow): Promise<void> {
  await db.query(
    `INSERT INTO requirements (id, project_id, state, content_version, author, decided_by, decision_reason,
       create_time, update_time, decide_time, superseded_by, version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      d.id,
      d.projectId,
      d.state,
      d.contentVersion,
      d.author,
      d.decidedBy,
      d.decisionReason,
      d.createTime,
      d.updateTime,
      d.decideTime,
      d.supersededBy,
      d.version,
    ],
  );
  await insertRevision(db, d);
}

/** Records the draft's current content as revision `contentVersion`. */
export async function insertRevision(db: Db, d: DraftRow): Promise<void> {
  await db.query(
    `INSERT INTO requirements_revisions (requirements_id, version, content, editor, create_time)
     VALUES ($1, $2, $3, $4, $5)`,
    [d.id, d.contentVersion, d.content, d.lastEditor, d.updateTime],
  );
}

/** Writes the lifecycle fields of a draft (content lives in revisions). */
export async function saveDraft(db: Db, d: DraftRow): Promise<void> {
  await db.query(
    `UPDATE requirements SET state = $2, content_version = $3, decided_by = $4, decision_reason = $5,
       update_time = $6, decide_time = $7, superseded_by = $8, version = $9
     WHERE id = $1`,
    [
      d.id,
      d.state,
      d.contentVersion,
      d.decidedBy,
      d.decisionReason,
      d.updateTime,
      d.decideTime,
      d.supersededBy,
      d.version,
    ],
  );
}

/**
 * A draft of a project at its latest revision, or at `revision` when non-zero. `lock`
 * takes a row lock on the draft.
 */
export async function getDraft(
  db: Db,
  projectId: string,
  id: string,
  revision = 0n,
  lock = false,
): Promise<DraftRow | undefined> {
  const which = revision === 0n ? "v.version = r.content_version" : "v.version = $3";
  const args: unknown[] = [id, projectId];
  if (revision !== 0n) args.push(revision);
  const { rows } = await db.query<Raw>(
    `${SELECT} WHERE r.id = $1 AND r.project_id = $2 AND ${which}${lock ? " FOR UPDATE OF r" : ""}`,
    args,
  );
  const row = rows[0];
  if (!row) return undefined;
  const draft = fromRaw(row);
  if (revision !== 0n) draft.updateTime = row.rev_time;
  return draft;
}

/** The project's draft in `state` (PROPOSED and APPROVED are unique per project). */
export async function findByState(
  db: Db,
  projectId: string,
  state: number,
  lock = false,
): Promise<DraftRow | undefined> {
  const { rows } = await db.query<Raw>(
    `${SELECT} WHERE r.project_id = $1 AND r.state = $2 AND v.version = r.content_version
     ORDER BY r.create_time DESC LIMIT 1${lock ? " FOR UPDATE OF r" : ""}`,
    [projectId, state],
  );
  return rows[0] && fromRaw(rows[0]);
}

/** Drafts at their latest revision, newest first (create_time, then id), after the cursor. */
export async function listDrafts(
  db: Db,
  projectId: string,
  state: number,
  after: readonly [Date, string] | undefined,
  limit: number,
): Promise<DraftRow[]> {
  const args: unknown[] = [projectId, state, limit];
  let keyset = "";
  if (after) {
    args.push(after[0], after[1]);
    keyset = " AND (r.create_time, r.id) < ($4, $5::uuid)";
  }
  const { rows } = await db.query<Raw>(
    `${SELECT} WHERE r.project_id = $1 AND ($2::int = 0 OR r.state = $2::int) AND v.version = r.content_version${keyset}
     ORDER BY r.create_time DESC, r.id DESC LIMIT $3`,
    args,
  );
  return rows.map(fromRaw);
}
