import type { Db } from "./db.js";

/**
 * request_id idempotency. The key row is claimed inside the mutation's own transaction,
 * before the work runs: a concurrent duplicate blocks on the primary key until the first
 * commits (then replays its response) or rolls back (then runs itself). Keys older than the
 * retention count as absent and are reclaimed in place.
 */
export type Claim =
  | { kind: "claimed" }
  | { kind: "replay"; method: string; requestHash: string; response: Uint8Array | null };

export async function claimRequestId(
  db: Db,
  k: {
    principal: string;
    requestId: string;
    method: string;
    requestHash: string;
    now: Date;
    expiredBefore: Date;
  },
): Promise<Claim> {
  const { rows } = await db.query(
    `INSERT INTO idempotency_keys (principal, request_id, method, request_hash, response, create_time)
     VALUES ($1, $2, $3, $4, NULL, $5)
     ON CONFLICT (principal, request_id) DO UPDATE
       SET method = EXCLUDED.method, request_hash = EXCLUDED.request_hash, response = NULL,
           create_time = EXCLUDED.create_time
       WHERE idempotency_keys.create_time < $6
     RETURNING 1`,
    [k.principal, k.requestId, k.method, k.requestHash, k.now, k.expiredBefore],
  );
  if (rows.length > 0) return { kind: "claimed" };
  const existing = await db.query<{ method: string; request_hash: string; response: Buffer | null }>(
    "SELECT method, request_hash, response FROM idempotency_keys WHERE principal = $1 AND request_id = $2",
    [k.principal, k.requestId],
  );
  const row = existing.rows[0];
  if (!row) return { kind: "claimed" };
  return { kind: "replay", method: row.method, requestHash: row.request_hash, response: row.response };
}

export async function storeResponse(db: Db, principal: string, requestId: string, response: Uint8Array) {
  await db.query("UPDATE idempotency_keys SET response = $3 WHERE principal = $1 AND request_id = $2", [
    principal,
    requestId,
    Buffer.from(response),
  ]);
}

/** Deletes expired keys in small batches. */
export async function purgeExpiredKeys(db: Db, expiredBefore: Date, batch = 500): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM idempotency_keys WHERE ctid IN (
       SELECT ctid FROM idempotency_keys WHERE create_time < $1 LIMIT $2)`,
    [expiredBefore, batch],
  );
  return rowCount ?? 0;
}
