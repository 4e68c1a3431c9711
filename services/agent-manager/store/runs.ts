/**
 * Reads of the runs table and the mapping of its rows to the contract's Run. Writes of run
 * state go through the group committer (run-batches.ts); these are the one-row and list reads.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type pg from "pg";
import type { RunSchema, RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { durationBetween, isActive } from "../domain/run-state.js";
import { durationOf } from "./convert.js";

/** A row of `runs`, as pg returns it (int8 as bigint, timestamptz as Date, jsonb parsed). */
export interface RunRow {
  id: string;
  task_id: string;
  attempt: number;
  work_item_id: string;
  project_id: string;
  request_id: string;
  priority: number;
  agent_selector: Record<string, string>;
  required_tools: { name: string; version: string }[];
  work_item: Buffer;
  state: RunState;
  agent_id: string;
  fencing_token: bigint;
  lease_expire_at: Date | null;
  lease_expiries: number;
  rejected_by: string[];
  current_step: number;
  exit_code: number | null;
  error: string;
  cancel_requested: boolean;
  cancel_reason: string;
  cancel_requested_at: Date | null;
  trace_id: string;
  created_at: Date;
  assigned_at: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
  version: bigint;
}

/** Anything that runs queries: the pool or a transaction's client. */
export type Db = pg.Pool | pg.PoolClient;

export function runEtag(row: Pick<RunRow, "version">): string {
  return `v${row.version}`;
}

/**
 * The contract's Run. `leaseExpireMs` is the live expiry from the lease store (renewals never
 * touch Postgres); without it the expiry granted at claim is shown.
 */
export function toRun(row: RunRow, leaseExpireMs?: number): MessageInitShape<typeof RunSchema> {
  const leaseAt = isActive(row.state)
    ? leaseExpireMs !== undefined
      ? new Date(leaseExpireMs)
      : row.lease_expire_at
    : null;
  const queued = durationBetween(row.created_at, row.started_at);
  const ran = durationBetween(row.started_at, row.finished_at);
  return {
    id: row.id,
    workItemId: row.work_item_id,
    taskId: row.task_id,
    projectId: row.project_id,
    agentId: row.agent_id,
    attempt: row.attempt,
    state: row.state,
    fencingToken: row.fencing_token,
    leaseExpiries: row.lease_expiries,
    priority: row.priority,
    agentSelector: row.agent_selector,
    currentStep: row.current_step,
    ...(row.exit_code !== null ? { exitCode: row.exit_code } : {}),
    error: row.error,
    cancelRequested: row.cancel_requested,
    cancelReason: row.cancel_reason,
    traceId: row.trace_id,
    createTime: timestampFromDate(row.created_at),
    ...(leaseAt ? { leaseExpireTime: timestampFromDate(leaseAt) } : {}),
    ...(row.assigned_at ? { assignTime: timestampFromDate(row.assigned_at) } : {}),
    ...(row.started_at ? { startTime: timestampFromDate(row.started_at) } : {}),
    ...(row.finished_at ? { finishTime: timestampFromDate(row.finished_at) } : {}),
    ...(queued !== undefined ? { queueDuration: durationOf(queued) } : {}),
    ...(ran !== undefined ? { runDuration: durationOf(ran) } : {}),
    etag: runEtag(row),
  };
}

export async function getRun(
  db: Db,
  id: string,
  lock: "" | "FOR UPDATE" | "FOR SHARE" = "",
): Promise<RunRow | undefined> {
  const { rows } = await db.query<RunRow>(`SELECT * FROM runs WHERE id = $1 ${lock}`, [id]);
  return rows[0];
}

/** Runs an agent holds a lease on, per Postgres. */
export async function leasedRunsOf(db: Db, agentId: string): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>("SELECT * FROM runs WHERE agent_id = $1 AND state IN (2, 3)", [
    agentId,
  ]);
  return rows;
}

/** Every PENDING run, in claim order (loaded into the dispatcher at start-up and on resync). */
export async function pendingRuns(db: Db, limit: number): Promise<RunRow[]> {
  const { rows } = await db.query<RunRow>(
    "SELECT * FROM runs WHERE state = 1 ORDER BY priority DESC, created_at LIMIT $1",
    [limit],
  );
  return rows;
}

/** Every leased run's lease as granted at claim (to rebuild the lease store). */
export async function leasedRuns(
  db: Db,
): Promise<Pick<RunRow, "id" | "agent_id" | "fencing_token" | "lease_expire_at" | "cancel_requested">[]> {
  const { rows } = await db.query<
    Pick<RunRow, "id" | "agent_id" | "fencing_token" | "lease_expire_at" | "cancel_requested">
  >("SELECT id, agent_id, fencing_token, lease_expire_at, cancel_requested FROM runs WHERE state IN (2, 3)");
  return rows;
}

/** Filters of ListRuns, already authorized (`projects` undefined = every project). */
export interface RunFilter {
  projects: string[] | undefined;
  workItemId: string;
  taskId: string;
  agentId: string;
  states: number[];
}

/** One page of runs, newest first, after the key (created_at ISO, id) if given. */
export async function listRuns(
  db: Db,
  f: RunFilter,
  after: [string, string] | undefined,
  limit: number,
): Promise<RunRow[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (f.projects !== undefined) where.push(`project_id = ANY(${arg(f.projects)}::text[])`);
  if (f.workItemId !== "") where.push(`work_item_id = ${arg(f.workItemId)}`);
  if (f.taskId !== "") where.push(`task_id = ${arg(f.taskId)}`);
  if (f.agentId !== "") where.push(`agent_id = ${arg(f.agentId)}`);
  if (f.states.length > 0) where.push(`state = ANY(${arg(f.states)}::smallint[])`);
  if (after) where.push(`(created_at, id) < (${arg(after[0])}::timestamptz, ${arg(after[1])}::uuid)`);
  const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
    ORDER BY created_at DESC, id DESC LIMIT ${arg(limit)}`;
  const { rows } = await db.query<RunRow>(sql, args);
  return rows;
}
