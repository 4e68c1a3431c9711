/**
 * The api_keys table: plain functions over a pool or a transaction's client.
 */
import type pg from "pg";
import type { RoleName } from "../auth/roles.js";

export type Db = pg.Pool | pg.ClientBase;

export type KeyState = "active" | "revoked" | "expired";

export interface ApiKeyRow {
  id: string;
  projectId: string;
  displayName: string;
  lookup: string;
  keyPrefix: string;
  secretSha256: Buffer;
  role: Exclude<RoleName, "owner">;
  scopes: string[];
  requestsPerMinute: number;
  createdBy: string;
  createTime: Date;
  expireTime: Date;
  revokeTime: Date | null;
  revokedBy: string;
  revokeReason: string;
  lastUseTime: Date | null;
  version: number;
}

const COLUMNS = `id::text AS "id", project_id AS "projectId", display_name AS "displayName", lookup,
  key_prefix AS "keyPrefix", secret_sha256 AS "secretSha256", role, scopes,
  requests_per_minute AS "requestsPerMinute", created_by AS "createdBy", create_time AS "createTime",
  expire_time AS "expireTime", revoke_time AS "revokeTime", revoked_by AS "revokedBy",
  revoke_reason AS "revokeReason", last_use_time AS "lastUseTime", version`;

/** The state of a key at `now`: revocation wins over expiry (both are final). */
export function stateOf(row: Pick<ApiKeyRow, "revokeTime" | "expireTime">, now: Date): KeyState {
  if (row.revokeTime !== null) return "revoked";
  return row.expireTime.getTime() <= now.getTime() ? "expired" : "active";
}

const STATE_SQL: Record<KeyState, string> = {
  active: "revoke_time IS NULL AND expire_time > $NOW",
  revoked: "revoke_time IS NOT NULL",
  expired: "revoke_time IS NULL AND expire_time <= $NOW",
};

/** Serializes key creation within one project (name uniqueness, active-key limit). */
export async function lockProject(db: pg.ClientBase, projectId: string): Promise<void> {
  await db.query("SELECT pg_advisory_xact_lock(hashtext('api_keys'), hashtext($1))", [projectId]);
}

export async function insertKey(
  db: Db,
  row: Omit<ApiKeyRow, "lastUseTime" | "version" | "revokeTime">,
): Promise<ApiKeyRow> {
  const { rows } = await db.query<ApiKeyRow>(
    `INSERT INTO api_keys (id, project_id, display_name, lookup, key_prefix, secret_sha256, role, scopes,
       requests_per_minute, created_by, create_time, expire_time, revoked_by, revoke_reason)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, '', '')
     RETURNING ${COLUMNS}`,
    [
      row.id,
      row.projectId,
      row.displayName,
      row.lookup,
      row.keyPrefix,
      row.secretSha256,
      row.role,
      row.scopes,
      row.requestsPerMinute,
      row.createdBy,
      row.createTime,
      row.expireTime,
    ],
  );
  return rows[0] as ApiKeyRow;
}

/** Counts the project's active keys and tells whether `name` is taken by one of them. */
export async function activeKeys(
  db: Db,
  projectId: string,
  name: string,
  now: Date,
): Promise<{ count: number; nameTaken: boolean }> {
  const { rows } = await db.query<{ count: number; taken: boolean }>(
    `SELECT count(*)::int AS count, coalesce(bool_or(display_name = $3), false) AS taken
     FROM api_keys WHERE project_id = $1 AND ${STATE_SQL.active.replace("$NOW", "$2")}`,
    [projectId, now, name],
  );
  return { count: rows[0]?.count ?? 0, nameTaken: rows[0]?.taken ?? false };
}

export async function findByLookup(db: Db, lookup: string): Promise<ApiKeyRow | undefined> {
  const { rows } = await db.query<ApiKeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE lookup = $1`, [lookup]);
  return rows[0];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A key by id, within a project when given; ids that are not UUIDs find nothing. */
export async function getKey(
  db: Db,
  id: string,
  projectId?: string,
  lock = false,
): Promise<ApiKeyRow | undefined> {
  if (!UUID.test(id)) return undefined;
  const scoped = projectId === undefined ? "" : " AND project_id = $2";
  const { rows } = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM api_keys WHERE id = $1${scoped}${lock ? " FOR UPDATE" : ""}`,
    projectId === undefined ? [id] : [id, projectId],
  );
  return rows[0];
}

export interface ListQuery {
  projectId: string;
  state?: KeyState;
  createdBy?: string;
  now: Date;
  /** Keyset cursor: the last row of the previous page. */
  after?: { createTime: Date; id: string };
  limit: number;
}

/** Keys newest first (create_time, then id, both descending). */
export async function listKeys(db: Db, q: ListQuery): Promise<ApiKeyRow[]> {
  const args: unknown[] = [q.projectId];
  const where = ["project_id = $1"];
  const arg = (v: unknown) => `$${args.push(v)}`;
  const state = q.state ? STATE_SQL[q.state] : undefined;
  if (state) where.push(state.includes("$NOW") ? state.replace("$NOW", arg(q.now)) : state);
  if (q.createdBy) where.push(`created_by = ${arg(q.createdBy)}`);
  if (q.after) where.push(`(create_time, id) < (${arg(q.after.createTime)}, ${arg(q.after.id)}::uuid)`);
  const { rows } = await db.query<ApiKeyRow>(
    `SELECT ${COLUMNS} FROM api_keys WHERE ${where.join(" AND ")}
     ORDER BY create_time DESC, id DESC LIMIT ${arg(q.limit)}`,
    args,
  );
  return rows;
}

export async function revokeKey(
  db: Db,
  id: string,
  r: { now: Date; by: string; reason: string },
): Promise<ApiKeyRow> {
  const { rows } = await db.query<ApiKeyRow>(
    `UPDATE api_keys SET revoke_time = $2, revoked_by = $3, revoke_reason = $4, version = version + 1
     WHERE id = $1 RETURNING ${COLUMNS}`,
    [id, r.now, r.by, r.reason],
  );
  return rows[0] as ApiKeyRow;
}

/** Records a use, at most once a minute per key (api_key.proto: last_use_time is approximate). */
export async function touchLastUse(db: Db, id: string, now: Date): Promise<void> {
  await db.query(
    `UPDATE api_keys SET last_use_time = $2
     WHERE id = $1 AND (last_use_time IS NULL OR last_use_time < $2::timestamptz - interval '1 minute')`,
    [id, now],
  );
}
