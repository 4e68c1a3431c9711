import type { Principal } from "../../../mesh/context.js";
import { type SagaStateName, STEP_NAMES, type StepStateName } from "../domain/saga-plan.js";
import type { Db } from "./db.js";

export interface SagaRow {
  id: string;
  sagaType: string;
  projectId: string;
  requestId: string;
  requestHash: string;
  request: Uint8Array;
  state: SagaStateName;
  workItemId: string;
  taskId: string;
  /** google.rpc.Status bytes of the error that made the saga compensate. */
  error: Uint8Array | null;
  failedStep: string;
  startedBy: Principal;
  correlationId: string;
  owner: string;
  createTime: Date;
  updateTime: Date;
  finishTime: Date | null;
  version: bigint;
}

export interface StepRow {
  idx: number;
  name: string;
  state: StepStateName;
  attempt: number;
  error: Uint8Array | null;
  startTime: Date | null;
  finishTime: Date | null;
}

const COLUMNS = `id, saga_type, project_id, request_id, request_hash, request, state, work_item_id, task_id, error,
  failed_step, started_by, correlation_id, owner, create_time, update_time, finish_time, version`;

function toSaga(r: Record<string, unknown>): SagaRow {
  return {
    id: r.id as string,
    sagaType: r.saga_type as string,
    projectId: r.project_id as string,
    requestId: r.request_id as string,
    requestHash: r.request_hash as string,
    request: new Uint8Array(r.request as Buffer),
    state: r.state as SagaStateName,
    workItemId: r.work_item_id as string,
    taskId: r.task_id as string,
    error: r.error ? new Uint8Array(r.error as Buffer) : null,
    failedStep: r.failed_step as string,
    startedBy: r.started_by as Principal,
    correlationId: r.correlation_id as string,
    owner: r.owner as string,
    createTime: r.create_time as Date,
    updateTime: r.update_time as Date,
    finishTime: (r.finish_time as Date | null) ?? null,
    version: BigInt(r.version as bigint),
  };
}

function toStep(r: Record<string, unknown>): StepRow {
  return {
    idx: r.idx as number,
    name: r.name as string,
    state: r.state as StepStateName,
    attempt: r.attempt as number,
    error: r.error ? new Uint8Array(r.error as Buffer) : null,
    startTime: (r.start_time as Date | null) ?? null,
    finishTime: (r.finish_time as Date | null) ?? null,
  };
}

/** Creates a saga owned by `owner` with every step PENDING. */
export async function insertSaga(db: Db, s: SagaRow, leaseMs: number): Promise<void> {
  await db.query(
    `INSERT INTO sagas (id, saga_type, project_id, request_id, request_hash, request, state, started_by,
       correlation_id, owner, lease_until, create_time, update_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(secs => $11::float8 / 1000), $12, $12)`,
    [
      s.id,
      s.sagaType,
      s.projectId,
      s.requestId,
      s.requestHash,
      Buffer.from(s.request),
      s.state,
      JSON.stringify(s.startedBy),
      s.correlationId,
      s.owner,
      leaseMs,
      s.createTime,
    ],
  );
  await db.query(
    `INSERT INTO saga_steps (saga_id, idx, name, state)
     SELECT $1, n::int - 1, name, 'PENDING' FROM unnest($2::text[]) WITH ORDINALITY AS x(name, n)`,
    [s.id, [...STEP_NAMES]],
  );
}

export async function getSaga(db: Db, id: string, lock = false): Promise<SagaRow | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM sagas WHERE id = $1${lock ? " FOR UPDATE" : ""}`, [
    id,
  ]);
  return rows[0] ? toSaga(rows[0]) : undefined;
}

export async function getSagaByRequest(db: Db, requestId: string): Promise<SagaRow | undefined> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM sagas WHERE request_id = $1`, [requestId]);
  return rows[0] ? toSaga(rows[0]) : undefined;
}

export async function stepsOf(db: Db, sagaIds: readonly string[]): Promise<Map<string, StepRow[]>> {
  const out = new Map<string, StepRow[]>();
  if (sagaIds.length === 0) return out;
  const { rows } = await db.query(
    `SELECT saga_id, idx, name, state, attempt, error, start_time, finish_time FROM saga_steps
      WHERE saga_id = ANY($1::uuid[]) ORDER BY saga_id, idx`,
    [sagaIds],
  );
  for (const r of rows) out.set(r.saga_id as string, [...(out.get(r.saga_id as string) ?? []), toStep(r)]);
  return out;
}

/** Lists sagas newest first, keyset-paged on (create_time, id). */
export async function listSagas(
  db: Db,
  f: { projects: string[] | undefined; states: string[]; after: [string, string] | undefined; limit: number },
): Promise<(SagaRow & { orderTime: string })[]> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS}, create_time::text AS order_time FROM sagas
      WHERE ($1::text[] IS NULL OR project_id = ANY($1))
        AND (cardinality($2::text[]) = 0 OR state = ANY($2))
        AND ($3::timestamptz IS NULL OR create_time < $3 OR (create_time = $3 AND id < $4::uuid))
      ORDER BY create_time DESC, id DESC LIMIT $5`,
    [f.projects ?? null, f.states, f.after?.[0] ?? null, f.after?.[1] ?? null, f.limit],
  );
  return rows.map((r) => ({ ...toSaga(r), orderTime: r.order_time as string }));
}

/** Takes over up to `limit` unfinished sagas nobody holds a live lease on. */
export async function claimOrphans(db: Db, owner: string, leaseMs: number, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `UPDATE sagas SET owner = $1, lease_until = now() + make_interval(secs => $2::float8 / 1000)
      WHERE id IN (SELECT id FROM sagas WHERE state IN ('RUNNING', 'COMPENSATING') AND lease_until < now()
                    ORDER BY create_time LIMIT $3 FOR UPDATE SKIP LOCKED)
      RETURNING id`,
    [owner, leaseMs, limit],
  );
  return rows.map((r) => r.id);
}

/** Extends the leases of the sagas `owner` runs; returns those it still owns. */
export async function renewLeases(
  db: Db,
  owner: string,
  ids: readonly string[],
  leaseMs: number,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<{ id: string }>(
    `UPDATE sagas SET lease_until = now() + make_interval(secs => $3::float8 / 1000)
      WHERE id = ANY($2::uuid[]) AND owner = $1 AND state IN ('RUNNING', 'COMPENSATING') RETURNING id`,
    [owner, ids, leaseMs],
  );
  return rows.map((r) => r.id);
}

/** Gives up the leases of `owner` (graceful stop), so another replica resumes at once. */
export async function releaseLeases(db: Db, owner: string): Promise<void> {
  await db.query(
    `UPDATE sagas SET owner = '', lease_until = '-infinity'
      WHERE owner = $1 AND state IN ('RUNNING', 'COMPENSATING')`,
    [owner],
  );
}
