/**
 * The info_requests table. Answer values exist only sealed (domain/keys.ts) in
 * `answer_sealed`, are erased when the run ends, and never leave through a read API or event:
 * {@link toInfoRequest} has no place for them, and InfoAnswered carries field names only.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type {
  InfoRequestSchema,
  InfoRequestState,
} from "../../../gen/codex/agentmanager/v1/info_request_pb.js";
import { InfoAnsweredSchema, InfoRequestedSchema } from "../../../gen/codex/events/v1/agent_events_pb.js";
import { envelope, type Origin } from "../events/origin.js";
import type { BatchContext } from "./group-commit.js";
import type { Db, RunRow } from "./runs.js";

export interface InfoRow {
  id: string;
  run_id: string;
  work_item_id: string;
  project_id: string;
  agent_id: string;
  request_id: string;
  reason: string;
  fields: { name: string; description: string; secret: boolean }[];
  state: InfoRequestState;
  answered_by: string;
  answer_time: Date | null;
  answer_sealed: Buffer | null;
  answer_request_id: string;
  delivered_at: Date | null;
  created_at: Date;
  version: bigint;
}

/** The public view: everything but the values. */
export function toInfoRequest(row: InfoRow): MessageInitShape<typeof InfoRequestSchema> {
  return {
    id: row.id,
    runId: row.run_id,
    workItemId: row.work_item_id,
    projectId: row.project_id,
    agentId: row.agent_id,
    reason: row.reason,
    fields: row.fields,
    state: row.state,
    answeredBy: row.answered_by,
    ...(row.answer_time ? { answerTime: timestampFromDate(row.answer_time) } : {}),
    createTime: timestampFromDate(row.created_at),
    etag: `v${row.version}`,
  };
}

const agg = (row: InfoRow) => ({
  type: "info_request" as const,
  id: row.id,
  version: row.version,
  projectId: row.project_id,
});

/** Creates a PENDING request of a leased run (InfoRequested); the agent's request_id replays. */
export async function createInfoRequest(
  ctx: BatchContext,
  init: {
    id: string;
    run: RunRow;
    requestId: string;
    fields: InfoRow["fields"];
    reason: string;
    origin: Origin;
  },
): Promise<{ row: InfoRow; created: boolean }> {
  const { run } = init;
  const { rows } = await ctx.client.query<InfoRow>(
    `INSERT INTO info_requests (id, run_id, work_item_id, project_id, agent_id, request_id, reason, fields, state, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9)
     ON CONFLICT (run_id, request_id) DO NOTHING RETURNING *`,
    [
      init.id,
      run.id,
      run.work_item_id,
      run.project_id,
      run.agent_id,
      init.requestId,
      init.reason,
      JSON.stringify(init.fields),
      ctx.now,
    ],
  );
  const created = rows[0];
  if (created) {
    ctx.stage(
      envelope(
        InfoRequestedSchema,
        { infoRequest: toInfoRequest(created) },
        agg(created),
        init.origin,
        ctx.now,
      ),
    );
    return { row: created, created: true };
  }
  const { rows: existing } = await ctx.client.query<InfoRow>(
    "SELECT * FROM info_requests WHERE run_id = $1 AND request_id = $2",
    [run.id, init.requestId],
  );
  if (!existing[0]) throw new Error("info request vanished");
  return { row: existing[0], created: false };
}

export async function getInfoRequest(db: Db, id: string, lock = false): Promise<InfoRow | undefined> {
  const { rows } = await db.query<InfoRow>(
    `SELECT * FROM info_requests WHERE id = $1 ${lock ? "FOR UPDATE" : ""}`,
    [id],
  );
  return rows[0];
}

/** Records a sealed answer (InfoAnswered, without values). */
export async function recordAnswer(
  ctx: BatchContext,
  id: string,
  sealed: Buffer,
  answeredBy: string,
  requestId: string,
  origin: Origin,
): Promise<InfoRow | undefined> {
  const { rows } = await ctx.client.query<InfoRow>(
    `UPDATE info_requests SET state = 2, answer_sealed = $2, answered_by = $3, answer_time = $4,
            answer_request_id = $5, version = version + 1
     WHERE id = $1 AND state = 1 RETURNING *`,
    [id, sealed, answeredBy, ctx.now, requestId],
  );
  const row = rows[0];
  if (row) {
    ctx.stage(
      envelope(
        InfoAnsweredSchema,
        {
          infoRequestId: row.id,
          runId: row.run_id,
          workItemId: row.work_item_id,
          answeredBy,
          answerTime: timestampFromDate(ctx.now),
          fieldNames: row.fields.map((f) => f.name),
        },
        agg(row),
        origin,
        ctx.now,
      ),
    );
  }
  return row;
}

/** Answered requests of runs whose values are still held (optionally only undelivered ones). */
export async function answeredOf(
  db: Db,
  runIds: readonly string[],
  undeliveredOnly: boolean,
): Promise<InfoRow[]> {
  if (runIds.length === 0) return [];
  const { rows } = await db.query<InfoRow>(
    `SELECT * FROM info_requests WHERE run_id = ANY($1::uuid[]) AND answer_sealed IS NOT NULL
     ${undeliveredOnly ? "AND delivered_at IS NULL" : ""} ORDER BY answer_time`,
    [runIds],
  );
  return rows;
}

export async function markDelivered(db: Db, ids: readonly string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.query(
    "UPDATE info_requests SET delivered_at = now() WHERE id = ANY($1::uuid[]) AND delivered_at IS NULL",
    [ids],
  );
}

/** Filters of ListInfoRequests, already authorized. */
export interface InfoFilter {
  projectId: string;
  runId: string;
  states: number[];
  projects: string[] | undefined;
}

export async function listInfoRequests(
  db: Db,
  f: InfoFilter,
  after: [string, string] | undefined,
  limit: number,
) {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (f.projectId !== "") where.push(`project_id = ${arg(f.projectId)}`);
  if (f.runId !== "") where.push(`run_id = ${arg(f.runId)}::uuid`);
  if (f.states.length > 0) where.push(`state = ANY(${arg(f.states)}::smallint[])`);
  if (f.projects !== undefined) where.push(`project_id = ANY(${arg(f.projects)}::text[])`);
  if (after) where.push(`(created_at, id) < (${arg(after[0])}::timestamptz, ${arg(after[1])}::uuid)`);
  const { rows } = await db.query<InfoRow>(
    `SELECT * FROM info_requests WHERE ${where.join(" AND ") || "true"} ORDER BY created_at DESC, id DESC LIMIT ${arg(limit)}`,
    args,
  );
  return rows;
}
