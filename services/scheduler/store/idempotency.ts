import { createHash } from "node:crypto";
import type { Db } from "./db.js";

/** Hash of a request's meaningful content, to tell a retry from a different request. */
export function requestHash(value: unknown): string {
  return createHash("sha256")
    .update(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)))
    .digest("hex");
}

/** The result id stored for a request id, and whether the stored request was the same. */
export async function findRequest(
  db: Db,
  method: string,
  requestId: string,
  hash: string,
): Promise<{ resultId: string; same: boolean } | undefined> {
  if (requestId === "") return undefined;
  const { rows } = await db.query<{ result_id: string; request_hash: string }>(
    "SELECT result_id, request_hash FROM idempotency WHERE method = $1 AND request_id = $2",
    [method, requestId],
  );
  const r = rows[0];
  return r ? { resultId: r.result_id, same: r.request_hash === hash } : undefined;
}

export async function saveRequest(db: Db, method: string, requestId: string, hash: string, resultId: string) {
  if (requestId === "") return;
  await db.query(
    `INSERT INTO idempotency (method, request_id, request_hash, result_id) VALUES ($1, $2, $3, $4)
     ON CONFLICT (method, request_id) DO NOTHING`,
    [method, requestId, hash, resultId],
  );
}

/** Forgets request ids older than `before` (the contract keeps them 24 hours). */
export async function purgeRequests(db: Db, before: Date): Promise<void> {
  await db.query("DELETE FROM idempotency WHERE created_at < $1", [before]);
  await db.query("DELETE FROM processed_events WHERE processed_at < $1", [before]);
}
