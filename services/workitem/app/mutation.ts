import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type pg from "pg";
import type { Principal } from "../../../mesh/context.js";
import { IdempotencyKeys, requestFingerprint, runIdempotent } from "../../../mesh/postgres/idempotency.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { actorId } from "../authz.js";
import { failedPrecondition, invalidArgument } from "../errors.js";
import type { Deps } from "./deps.js";

/** How long a request_id is remembered, as the contract promises. */
const REQUEST_ID_RETENTION_MS = 24 * 60 * 60 * 1000;
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The service's request ids (table `idempotency_keys`, migration 1). */
export const requestIds = new IdempotencyKeys({ retentionMs: REQUEST_ID_RETENTION_MS });

/** A mutating RPC: its name, request (for the fingerprint) and the response schema (for replay). */
export interface Mutation<Req extends DescMessage, Res extends DescMessage> {
  method: string;
  requestId: string;
  requestSchema: Req;
  request: MessageShape<Req>;
  responseSchema: Res;
}

/**
 * Runs a mutation in one transaction, made idempotent by its request_id (see
 * mesh/postgres/idempotency.ts): the key is claimed in the same transaction as the change and
 * its events, so a retry either replays the committed response or, if the first attempt rolled
 * back, runs again. The same key with a different request is refused (IDEMPOTENCY_KEY_REUSED).
 */
export async function mutate<Req extends DescMessage, Res extends DescMessage>(
  deps: Deps,
  principal: Principal,
  m: Mutation<Req, Res>,
  work: (tx: pg.PoolClient) => Promise<MessageShape<Res>>,
): Promise<MessageShape<Res>> {
  if (m.requestId === "") return withTransaction(deps.pool, work);
  if (!REQUEST_ID.test(m.requestId)) {
    throw invalidArgument("invalid request_id", [
      { field: "request_id", description: "must be 1-128 printable ASCII characters" },
    ]);
  }
  const key = {
    principal: actorId(principal),
    requestId: m.requestId,
    method: m.method,
    // request_id is the key, not the content.
    requestHash: requestFingerprint(m.requestSchema, m.request, { omit: ["requestId"] }),
  };
  return withTransaction(deps.pool, (tx) =>
    runIdempotent(
      tx,
      requestIds,
      {
        key,
        now: deps.now(),
        encode: (response) => toBinary(m.responseSchema, response),
        decode: (stored) => fromBinary(m.responseSchema, stored),
        // A claim without its response is never visible to others; refuse it like a reuse.
        refuse: () =>
          failedPrecondition(
            "IDEMPOTENCY_KEY_REUSED",
            `request_id/${m.requestId}`,
            `request_id ${m.requestId} was already used with a different request`,
          ),
      },
      () => work(tx),
    ),
  );
}
