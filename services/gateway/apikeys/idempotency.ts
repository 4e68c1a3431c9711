/**
 * Request-id idempotency for CreateApiKey and RevokeApiKey, on mesh/postgres/idempotency.ts: a
 * retry within 24 hours returns the stored response of the first call; the claim row is written
 * in the same transaction as the change, so a concurrent duplicate waits on its primary key and
 * then replays.
 *
 * What is stored must never hold a secret: CreateApiKey stores its response with `secret`
 * cleared, so a replay returns the key without it (the contract: "never shown twice").
 */
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type pg from "pg";
import type { Principal } from "../../../mesh/context.js";
import { IdempotencyKeys, requestFingerprint, runIdempotent } from "../../../mesh/postgres/idempotency.js";
import { LIMITS } from "./validation.js";

/** The gateway's request ids (table `idempotency_keys`, migration 2). */
const requestIds = new IdempotencyKeys({ retentionMs: LIMITS.requestIdRetentionMs });

export interface IdempotentCall<I extends DescMessage, O extends DescMessage> {
  method: string;
  requestId: string;
  input: I;
  request: MessageShape<I>;
  output: O;
  /** What to store instead of the response (e.g. without the secret). */
  stored?: (response: MessageShape<O>) => MessageShape<O>;
}

/** Runs `fn` at most once per (principal, request id); `client` is the transaction's client. */
export async function idempotent<I extends DescMessage, O extends DescMessage>(
  client: pg.ClientBase,
  principal: Principal,
  now: Date,
  call: IdempotentCall<I, O>,
  fn: () => Promise<MessageShape<O>>,
): Promise<MessageShape<O>> {
  if (call.requestId === "") return fn();
  const key = {
    principal: `${principal.type}:${principal.id}`,
    requestId: call.requestId,
    method: call.method,
    // Hashes already stored are SHA-256 of toJsonString (field order), so keep that recipe.
    requestHash: requestFingerprint(call.input, call.request, { keyOrder: "as-given" }),
  };
  return runIdempotent(
    client,
    requestIds,
    {
      key,
      now,
      encode: (response) => toBinary(call.output, call.stored ? call.stored(response) : response),
      decode: (stored) => fromBinary(call.output, stored),
    },
    fn,
  );
}

/** Deletes request ids past their retention, in small batches (kept off the request path). */
export async function purgeExpiredRequestIds(db: pg.Pool, now: Date, batch = 500): Promise<number> {
  return requestIds.purgeExpired(db, now, batch);
}
