import { createHash } from "node:crypto";
import { type DescMessage, fromBinary, type MessageShape, toBinary, toJson } from "@bufbuild/protobuf";
import type { Principal } from "../../../mesh/context.js";
import { aborted, invalidArgument } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { LIMITS } from "../domain/limits.js";
import { stableJson } from "../domain/page-token.js";
import { claimRequestId, storeResponse } from "../store/idempotency.js";
import { type Deps, inTransaction, type Tx } from "./context.js";

/** One call that may carry a request_id. */
export interface IdempotentCall<I extends DescMessage, O extends DescMessage> {
  method: string;
  requestId: string;
  input: I;
  request: MessageShape<I>;
  output: O;
}

/**
 * Runs a mutation at most once per (principal, request_id) within 24 hours. The response
 * bytes are stored in the same transaction as the change, so a replay returns exactly
 * what the first call returned (even if the resource changed since), and a crash can
 * never leave a change without its stored response. Errors are not stored: a retry after
 * a failure runs again. Reusing a request_id for another request is INVALID_ARGUMENT.
 */
export async function idempotent<I extends DescMessage, O extends DescMessage>(
  deps: Deps,
  ctx: CallContext,
  principal: Principal,
  call: IdempotentCall<I, O>,
  fn: (tx: Tx) => Promise<MessageShape<O>>,
): Promise<MessageShape<O>> {
  if (call.requestId === "") return inTransaction(deps, ctx, principal, fn);
  const requestHash = hashRequest(call.input, call.request);
  const key = `${principal.type}:${principal.id}`;
  return inTransaction(deps, ctx, principal, async (tx) => {
    const claim = await claimRequestId(tx.client, {
      principal: key,
      requestId: call.requestId,
      method: call.method,
      requestHash,
      now: tx.now,
      expiredBefore: new Date(tx.now.getTime() - LIMITS.requestIdRetentionMs),
    });
    if (claim.kind === "replay") {
      if (claim.method !== call.method || claim.requestHash !== requestHash) {
        throw invalidArgument("request_id was already used for a different request", [
          { field: "request_id", description: "was already used for a different request; use a new UUID" },
        ]);
      }
      // Only committed claims are visible, and those always carry their response.
      if (claim.response === null)
        throw aborted("the original request is still in flight; retry", "IN_FLIGHT");
      return fromBinary(call.output, claim.response);
    }
    const response = await fn(tx);
    await storeResponse(tx.client, key, call.requestId, toBinary(call.output, response));
    return response;
  });
}

/** A digest of the request's content, independent of map-entry order on the wire. */
function hashRequest<I extends DescMessage>(schema: I, request: MessageShape<I>): string {
  return createHash("sha256")
    .update(stableJson(toJson(schema, request)))
    .digest("hex");
}
