import { createHash } from "node:crypto";
import type pg from "pg";

/**
 * request_id handling (CreateSubscriptionRequest.request_id and friends): a retry with the same
 * id within 24 hours gets the original response; the same id for a different request is refused.
 * Keys are per principal, so two callers cannot collide (or probe each other's responses).
 */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

type Db = pg.Pool | pg.ClientBase;

export type Replay = { kind: "none" } | { kind: "replay"; response: Buffer } | { kind: "conflict" };

export function requestHash(method: string, bytes: Uint8Array): string {
  return createHash("sha256").update(method).update("\0").update(bytes).digest("hex");
}

/** Looks up a previous response; `lock` serialises concurrent retries inside a transaction. */
export async function findReplay(
  db: Db,
  principal: string,
  requestId: string,
  method: string,
  hash: string,
): Promise<Replay> {
  const { rows } = await db.query<{ method: string; request_hash: string; response: Buffer }>(
    `SELECT method, request_hash, response FROM idempotency_keys
     WHERE principal = $1 AND request_id = $2 AND create_time > now() - make_interval(secs => $3::double precision / 1000)`,
    [principal, requestId, IDEMPOTENCY_TTL_MS],
  );
  const row = rows[0];
  if (row === undefined) return { kind: "none" };
  if (row.method !== method || row.request_hash !== hash) return { kind: "conflict" };
  return { kind: "replay", response: row.response };
}

/**
 * Stores the response. Returns false when another call stored one first (the caller should then
 * roll back and answer with the stored one).
 */
export async function saveResponse(
  db: Db,
  principal: string,
  requestId: string,
  method: string,
  hash: string,
  response: Uint8Array,
): Promise<boolean> {
  const r = await db.query(
    `INSERT INTO idempotency_keys (principal, request_id, method, request_hash, response) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (principal, request_id) DO UPDATE SET method = EXCLUDED.method, request_hash = EXCLUDED.request_hash,
       response = EXCLUDED.response, create_time = now()
     WHERE idempotency_keys.create_time <= now() - make_interval(secs => $6::double precision / 1000)`,
    [principal, requestId, method, hash, Buffer.from(response), IDEMPOTENCY_TTL_MS],
  );
  return (r.rowCount ?? 0) > 0;
}
