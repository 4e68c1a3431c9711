import type { Db } from "./db.js";

/**
 * A project's quota row. It exists from project creation on and is also the lock that
 * serializes reservations per project (SELECT ... FOR UPDATE). Limits are null while the
 * configured defaults apply. `version` feeds the etag (changes only on SetQuota);
 * `eventSeq` is the "quota" aggregate's event version (every quota event bumps it).
 * The `*ExhaustedWindow` columns remember for which window a QuotaExhausted event was
 * already published, so it goes out at most once per limit per window.
 */
export interface QuotaRow {
  projectId: string;
  runsPerDay: number | null;
  maxConcurrentRuns: number | null;
  window: number;
  updatedBy: string;
  updateTime: Date | null;
  version: bigint;
  eventSeq: bigint;
  runsExhaustedWindow: Date | null;
  concurrencyExhaustedWindow: Date | null;
}

type QuotaRaw = {
  project_id: string;
  runs_per_day: number | null;
  max_concurrent_runs: number | null;
  quota_window: number;
  updated_by: string;
  update_time: Date | null;
  version: bigint;
  event_seq: bigint;
  runs_exhausted_window: Date | null;
  concurrency_exhausted_window: Date | null;
};

const QUOTA_COLUMNS = `project_id, runs_per_day, max_concurrent_runs, quota_window, updated_by, update_time,
  version, event_seq, runs_exhausted_window, concurrency_exhausted_window`;

export async function insertDefaultQuota(db: Db, projectId: string): Promise<void> {
  await db.query("INSERT INTO quotas (project_id, quota_window, version) VALUES ($1, 1, 1)", [projectId]);
}

export async function getQuotaRow(db: Db, projectId: string, lock = false): Promise<QuotaRow | undefined> {
  const { rows } = await db.query<QuotaRaw>(
    `SELECT ${QUOTA_COLUMNS} FROM quotas WHERE project_id = $1${lock ? " FOR UPDATE" : ""}`,
    [projectId],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    projectId: r.project_id,
    runsPerDay: r.runs_per_day,
    maxConcurrentRuns: r.max_concurrent_runs,
    window: r.quota_window,
    updatedBy: r.updated_by,
    updateTime: r.update_time,
    version: r.version,
    eventSeq: r.event_seq,
    runsExhaustedWindow: r.runs_exhausted_window,
    concurrencyExhaustedWindow: r.concurrency_exhausted_window,
  };
}

export async function saveQuotaRow(db: Db, q: QuotaRow): Promise<void> {
  await db.query(
    `UPDATE quotas SET runs_per_day = $2, max_concurrent_runs = $3, quota_window = $4, updated_by = $5,
       update_time = $6, version = $7, event_seq = $8, runs_exhausted_window = $9,
       concurrency_exhausted_window = $10
     WHERE project_id = $1`,
    [
      q.projectId,
      q.runsPerDay,
      q.maxConcurrentRuns,
      q.window,
      q.updatedBy,
      q.updateTime,
      q.version,
      q.eventSeq,
      q.runsExhaustedWindow,
      q.concurrencyExhaustedWindow,
    ],
  );
}

/** A run-slot reservation; `state` is the codex.project.v1.ReservationState number. */
export interface ReservationRow {
  projectId: string;
  key: string;
  workItemId: string;
  state: number;
  windowStart: Date;
  windowReset: Date;
  createTime: Date;
  expireTime: Date;
  releaseTime: Date | null;
}

type ReservationRaw = {
  project_id: string;
  key: string;
  work_item_id: string;
  state: number;
  window_start: Date;
  window_reset: Date;
  create_time: Date;
  expire_time: Date;
  release_time: Date | null;
};

const RES_COLUMNS =
  "project_id, key, work_item_id, state, window_start, window_reset, create_time, expire_time, release_time";

function reservationFromRaw(r: ReservationRaw): ReservationRow {
  return {
    projectId: r.project_id,
    key: r.key,
    workItemId: r.work_item_id,
    state: r.state,
    windowStart: r.window_start,
    windowReset: r.window_reset,
    createTime: r.create_time,
    expireTime: r.expire_time,
    releaseTime: r.release_time,
  };
}

export async function getReservation(
  db: Db,
  projectId: string,
  key: string,
): Promise<ReservationRow | undefined> {
  const { rows } = await db.query<ReservationRaw>(
    `SELECT ${RES_COLUMNS} FROM reservations WHERE project_id = $1 AND key = $2`,
    [projectId, key],
  );
  return rows[0] && reservationFromRaw(rows[0]);
}

export async function insertReservation(db: Db, r: ReservationRow): Promise<void> {
  await db.query(`INSERT INTO reservations (${RES_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
    r.projectId,
    r.key,
    r.workItemId,
    r.state,
    r.windowStart,
    r.windowReset,
    r.createTime,
    r.expireTime,
    r.releaseTime,
  ]);
}

export async function saveReservationState(db: Db, r: ReservationRow): Promise<void> {
  await db.query("UPDATE reservations SET state = $3, release_time = $4 WHERE project_id = $1 AND key = $2", [
    r.projectId,
    r.key,
    r.state,
    r.releaseTime,
  ]);
}

/**
 * Releases, as EXPIRED, every HELD reservation of the project whose expire_time has passed,
 * and returns them (oldest first) so the caller can publish their RunSlotReleased events.
 * Done lazily by whoever holds the quota lock next, so no sweeper process is needed.
 */
export async function expireHeld(db: Db, projectId: string, now: Date): Promise<ReservationRow[]> {
  const { rows } = await db.query<ReservationRaw>(
    `UPDATE reservations SET state = 4, release_time = expire_time
     WHERE project_id = $1 AND state = 1 AND expire_time <= $2
     RETURNING ${RES_COLUMNS}`,
    [projectId, now],
  );
  return rows.map(reservationFromRaw).sort((a, b) => a.expireTime.getTime() - b.expireTime.getTime());
}

/**
 * Runs counted in the window starting at `windowStart` (HELD, CONSUMED and EXPIRED; a
 * REFUNDED reservation gave its run back) and reservations HELD and not yet expired at `now`.
 */
export async function usageCounts(
  db: Db,
  projectId: string,
  windowStart: Date,
  now: Date,
): Promise<{ runsUsed: number; concurrentInUse: number }> {
  const { rows } = await db.query<{ used: number; held: number }>(
    `SELECT count(*) FILTER (WHERE window_start = $2 AND state IN (1, 2, 4))::int AS used,
            count(*) FILTER (WHERE state = 1 AND expire_time > $3)::int AS held
     FROM reservations WHERE project_id = $1 AND (state = 1 OR window_start = $2)`,
    [projectId, windowStart, now],
  );
  return { runsUsed: rows[0]?.used ?? 0, concurrentInUse: rows[0]?.held ?? 0 };
}
