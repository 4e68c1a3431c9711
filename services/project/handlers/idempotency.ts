import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { Principal } from "../../../mesh/context.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { IdempotencyKeys, requestFingerprint, runIdempotent } from "../../../mesh/postgres/idempotency.js";
import { LIMITS } from "../domain/limits.js";
import { type Deps, inTransaction, type Tx } from "./context.js";

/** The service's request ids (table `idempotency_keys`, migration 1). */
export const requestIds = new IdempotencyKeys({ retentionMs: LIMITS.requestIdRetentionMs });

/** One call that may carry a request_id. */
export interface IdempotentCall<I extends DescMessage, O extends DescMessage> {
  method: string;
  requestId: string;
  input: I;
  request: MessageShape<I>;
  output: O;
}

/**
 * Runs a mutation at most once per (principal, request_id) within 24 hours (see
 * mesh/postgres/idempotency.ts): a replay returns exactly what the first call returned, even
 * if the resource changed since. Reusing a request_id for another request is INVALID_ARGUMENT
 * (mesh's refuseRequestId).
 */
export async function idempotent<I extends DescMessage, O extends DescMessage>(
  deps: Deps,
  ctx: CallContext,
  principal: Principal,
  call: IdempotentCall<I, O>,
  fn: (tx: Tx) => Promise<MessageShape<O>>,
): Promise<MessageShape<O>> {
  if (call.requestId === "") return inTransaction(deps, ctx, principal, fn);
  const key = {
    principal: `${principal.type}:${principal.id}`,
    requestId: call.requestId,
    method: call.method,
    requestHash: requestFingerprint(call.input, call.request),
  };
  return inTransaction(deps, ctx, principal, (tx) =>
    runIdempotent(
      tx.client,
      requestIds,
      {
        key,
        now: tx.now,
        encode: (response) => toBinary(call.output, response),
        decode: (stored) => fromBinary(call.output, stored),
      },
      () => fn(tx),
    ),
  );
}
