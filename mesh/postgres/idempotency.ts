import { type DescMessage, type MessageShape, toJson } from "@bufbuild/protobuf";
import type pg from "pg";
import { type FingerprintOptions, fingerprint } from "../crypto/fingerprint.js";
import { aborted, invalidArgument } from "../errors.js";

/**
 * request_id idempotency: (principal, request_id) → the method, a fingerprint of the request and
 * the response bytes, kept for 24 hours. A retry gets the stored response (even if the resource
 * changed since); the same request_id on a different request is refused.
 *
 * Why claim first, in the mutation's own transaction: the key row is inserted before the work
 * runs, so a concurrent duplicate blocks on the primary key until the first transaction
 * commits (then replays its response) or rolls back (then runs itself) — exactly one of them
 * does the work, with no advisory lock. The response is stored in that same transaction, so a
 * crash can never leave a change without its response. Errors are not stored: a retry after a
 * failure runs again. Rows past the retention count as absent and are reclaimed in place; the
 * purge only keeps the table small.
 */
export const REQUEST_ID_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The table services have always used. */
export const DEFAULT_IDEMPOTENCY_TABLE = "idempotency_keys";

const TABLE_NAME = /^[a-z_][a-z0-9_]{0,46}$/;

/** A pool for single statements, a transaction's client otherwise. */
type Queryable = pg.Pool | pg.ClientBase;

/**
 * SQL creating the key table in the current `search_path`, for a service to append to its own
 * migrations (`{ version: 4, name: "idempotency", sql: idempotencyMigrationSql() }`), like
 * `outboxMigrationSql`. Byte-for-byte stable once released: change it only by a new migration.
 *
 * Tables that services created by hand before this existed have the same columns (an index
 * name may differ, or be missing where the table stays small) and work unchanged: pass their
 * name to {@link IdempotencyKeys}. `response` is NULL only between the claim and the end of the
 * claiming transaction, so no other transaction ever sees it NULL.
 */
export function idempotencyMigrationSql(table: string = DEFAULT_IDEMPOTENCY_TABLE): string {
  checkTable(table);
  return `CREATE TABLE ${table} (
  principal text NOT NULL,
  request_id text NOT NULL,
  method text NOT NULL,
  request_hash text NOT NULL,
  response bytea NULL,
  create_time timestamptz NOT NULL,
  PRIMARY KEY (principal, request_id)
);
CREATE INDEX ${table}_create_time_idx ON ${table} (create_time);
`;
}

/** Who sent which request under which id. */
export interface RequestKey {
  /** The caller (e.g. `user:alice`): ids are per principal, so callers cannot collide or probe. */
  principal: string;
  requestId: string;
  /** The RPC; the same id on another method is a different request. */
  method: string;
  /** Fingerprint of the request's content ({@link requestFingerprint}). */
  requestHash: string;
}

/**
 * - `claimed`: the caller does the work and must {@link IdempotencyKeys.saveResponse} in the same transaction.
 * - `replay`: the first call's response.
 * - `reused`: the id was used for another method or request content.
 * - `in-flight`: a visible claim without its response — only possible if a claim was committed
 *   without saving, which {@link runIdempotent} never does.
 */
export type Claim =
  | { kind: "claimed" }
  | { kind: "replay"; response: Uint8Array }
  | { kind: "reused" }
  | { kind: "in-flight" };

export interface IdempotencyKeysOptions {
  /** Default `idempotency_keys`. */
  table?: string;
  /** How long an id is honoured; default 24 hours (what the contracts promise). */
  retentionMs?: number;
}

/** The key table of one service. */
export class IdempotencyKeys {
  readonly table: string;
  readonly retentionMs: number;

  constructor(options: IdempotencyKeysOptions = {}) {
    this.table = checkTable(options.table ?? DEFAULT_IDEMPOTENCY_TABLE);
    this.retentionMs = options.retentionMs ?? REQUEST_ID_RETENTION_MS;
  }

  /** Claims `key` at `now`, or tells why not; call inside the mutation's transaction. */
  async claim(db: Queryable, key: RequestKey, now: Date): Promise<Claim> {
    const { rows } = await db.query(
      `INSERT INTO ${this.table} (principal, request_id, method, request_hash, response, create_time)
       VALUES ($1, $2, $3, $4, NULL, $5)
       ON CONFLICT (principal, request_id) DO UPDATE
         SET method = EXCLUDED.method, request_hash = EXCLUDED.request_hash, response = NULL,
             create_time = EXCLUDED.create_time
         WHERE ${this.table}.create_time < $6
       RETURNING 1`,
      [key.principal, key.requestId, key.method, key.requestHash, now, this.#expiredBefore(now)],
    );
    if (rows.length > 0) return { kind: "claimed" };
    // The conflicting row is locked by the INSERT above, so it is still there.
    const prior = await db.query<{ method: string; request_hash: string; response: Buffer | null }>(
      `SELECT method, request_hash, response FROM ${this.table} WHERE principal = $1 AND request_id = $2`,
      [key.principal, key.requestId],
    );
    const row = prior.rows[0];
    if (!row) return { kind: "claimed" };
    if (row.method !== key.method || row.request_hash !== key.requestHash) return { kind: "reused" };
    if (row.response === null) return { kind: "in-flight" };
    return { kind: "replay", response: row.response };
  }

  /** Stores the response of a claimed key (same transaction as the claim). */
  async saveResponse(db: Queryable, key: RequestKey, response: Uint8Array): Promise<void> {
    await db.query(`UPDATE ${this.table} SET response = $3 WHERE principal = $1 AND request_id = $2`, [
      key.principal,
      key.requestId,
      Buffer.from(response),
    ]);
  }

  /**
   * Deletes up to `batch` keys past their retention at `now`; returns how many. Small batches
   * keep each statement short; expired keys are ignored by {@link claim} anyway.
   */
  async purgeExpired(db: Queryable, now: Date, batch = 500): Promise<number> {
    const { rowCount } = await db.query(
      `DELETE FROM ${this.table} WHERE ctid IN (
         SELECT ctid FROM ${this.table} WHERE create_time < $1 LIMIT $2)`,
      [this.#expiredBefore(now), batch],
    );
    return rowCount ?? 0;
  }

  #expiredBefore(now: Date): Date {
    return new Date(now.getTime() - this.retentionMs);
  }
}

/** One mutation made idempotent by {@link runIdempotent}. */
export interface IdempotentCall<T> {
  key: RequestKey;
  now: Date;
  /** The bytes kept for replays; may leave out what must never be stored (a secret shown once). */
  encode(response: T): Uint8Array;
  decode(stored: Uint8Array): T;
  /**
   * The error to throw when the id cannot be honoured; default {@link refuseRequestId}. A
   * service whose contract names other codes passes its own.
   */
  refuse?: (why: "reused" | "in-flight") => Error;
}

/**
 * The usual refusals: a reused id is INVALID_ARGUMENT on `request_id` (the caller must pick a
 * new one); a claim still in flight is ABORTED `IN_FLIGHT` (retrying later will replay it).
 */
export function refuseRequestId(why: "reused" | "in-flight"): Error {
  return why === "reused"
    ? invalidArgument("request_id was already used for a different request", [
        { field: "request_id", description: "was already used for a different request; use a new UUID" },
      ])
    : aborted("the original request is still in flight; retry", "IN_FLIGHT");
}

/**
 * Runs `work` at most once per key: claims the key, replays or refuses, or runs `work` and
 * stores its response. `db` must be the client of the transaction `work` writes in.
 */
export async function runIdempotent<T>(
  db: pg.ClientBase,
  keys: IdempotencyKeys,
  call: IdempotentCall<T>,
  work: () => Promise<T>,
): Promise<T> {
  const claim = await keys.claim(db, call.key, call.now);
  switch (claim.kind) {
    case "replay":
      return call.decode(claim.response);
    case "reused":
    case "in-flight":
      throw (call.refuse ?? refuseRequestId)(claim.kind);
    case "claimed": {
      const response = await work();
      await keys.saveResponse(db, call.key, call.encode(response));
      return response;
    }
  }
}

export interface RequestFingerprintOptions {
  /** Top-level JSON fields left out (e.g. `requestId`, which is the key rather than content). */
  omit?: readonly string[];
  /**
   * `sorted` (default): independent of map-entry order on the wire. `as-given`: the protobuf JSON
   * field order, i.e. SHA-256 of `toJsonString` — only for hashes already stored that way.
   */
  keyOrder?: FingerprintOptions["keyOrder"];
}

/** Hex SHA-256 of a request's canonical proto JSON, to tell a retry from a different request. */
export function requestFingerprint<I extends DescMessage>(
  schema: I,
  request: MessageShape<I>,
  options: RequestFingerprintOptions = {},
): string {
  const json = toJson(schema, request);
  if (options.omit && json !== null && typeof json === "object" && !Array.isArray(json)) {
    for (const field of options.omit) delete json[field];
  }
  return fingerprint(json, { encoding: "hex", keyOrder: options.keyOrder ?? "sorted" });
}

function checkTable(table: string): string {
  if (!TABLE_NAME.test(table)) {
    throw new Error(
      `invalid idempotency table name ${JSON.stringify(table)}: expected /^[a-z_][a-z0-9_]{0,46}$/`,
    );
  }
  return table;
}
