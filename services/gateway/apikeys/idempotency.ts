/**
 * Request-id idempotency for CreateApiKey and RevokeApiKey: a retry within 24 hours returns
 * the stored response of the first call. The claim row is written in the same transaction as
 * the change, so a concurrent duplicate waits on its primary key and then replays.
 *
 * What is stored must never hold a secret: CreateApiKey stores its response with `secret`
 * cleared, so a replay returns the key without it (the contract: "never shown twice").
 */
import { createHash } from "node:crypto";
import { type DescMessage, fromBinary, type MessageShape, toBinary, toJsonString } from "@bufbuild/protobuf";
import type pg from "pg";
import type { Principal } from "../../../mesh/context.js";
import { aborted, invalidArgument } from "../../../mesh/errors.js";
import { LIMITS } from "./validation.js";

export interface IdempotentCall<I extends DescMessage, O extends DescMessage> {
  method: string;
  requestId: string;
  input: I;
  request: MessageShape<I>;
  output: O;
  /** What to store instead of the response (e.g. without the secret). */
  stored?: (response: MessageShape<O>) => MessageShape<O>;
}

/** Runs `fn` at most once per (principal, request id); `fn` gets the transaction's client. */
export async function idempotent<I extends DescMessage, O extends DescMessage>(
  client: pg.ClientBase,
  principal: Principal,
  now: Date,
  call: IdempotentCall<I, O>,
  fn: () => Promise<MessageShape<O>>,
): Promise<MessageShape<O>> {
  if (call.requestId === "") return fn();
  const key = `${principal.type}:${principal.id}`;
  const hash = createHash("sha256").update(toJsonString(call.input, call.request)).digest("hex");
  const expiredBefore = new Date(now.getTime() - LIMITS.requestIdRetentionMs);
  const { rows } = await client.query(
    `INSERT INTO idempotency_keys (principal, request_id, method, request_hash, response, create_time)
     VALUES ($1, $2, $3, $4, NULL, $5)
     ON CONFLICT (principal, request_id) DO UPDATE
       SET method = EXCLUDED.method, request_hash = EXCLUDED.request_hash, response = NULL,
           create_time = EXCLUDED.create_time
       WHERE idempotency_keys.create_time < $6
     RETURNING 1`,
    [key, call.requestId, call.method, hash, now, expiredBefore],
  );
  if (rows.length === 0) {
    const prior = await client.query<{ method: string; request_hash: string; response: Buffer | null }>(
      "SELECT method, request_hash, response FROM idempotency_keys WHERE principal = $1 AND request_id = $2",
      [key, call.requestId],
    );
    const row = prior.rows[0];
    if (row && (row.method !== call.method || row.request_hash !== hash)) {
      throw invalidArgument("request_id was already used for a different request", [
        { field: "request_id", description: "was already used for a different request; use a new UUID" },
      ]);
    }
    if (row?.response) return fromBinary(call.output, row.response);
    if (row) throw aborted("the original request is still in flight; retry", "IN_FLIGHT");
  }
  const response = await fn();
  const stored = call.stored ? call.stored(response) : response;
  await client.query("UPDATE idempotency_keys SET response = $3 WHERE principal = $1 AND request_id = $2", [
    key,
    call.requestId,
    Buffer.from(toBinary(call.output, stored)),
  ]);
  return response;
}

/** Deletes request ids past their retention, in small batches (kept off the request path). */
export async function purgeExpiredRequestIds(db: pg.Pool, now: Date, batch = 500): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM idempotency_keys WHERE ctid IN (
       SELECT ctid FROM idempotency_keys WHERE create_time < $1 LIMIT $2)`,
    [new Date(now.getTime() - LIMITS.requestIdRetentionMs), batch],
  );
  return rowCount ?? 0;
}
