import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type pg from "pg";
import type { Principal } from "../../../mesh/context.js";
import { invalidArgument } from "../../../mesh/errors.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { findReplay, requestHash, saveResponse } from "../store/idempotency.js";
import { isUuid, principalKey } from "./guard.js";

/**
 * Runs `fn` in a transaction, once per (principal, request_id) within 24 hours: a retry gets the
 * stored response, the same id on a different request is INVALID_ARGUMENT. Concurrent retries
 * serialise on an advisory lock of the key, so exactly one of them runs `fn`.
 */
export async function idempotent<I extends DescMessage, O extends DescMessage>(
  pool: pg.Pool,
  p: Principal,
  method: string,
  input: { schema: I; message: MessageShape<I>; requestId: string },
  output: O,
  fn: (client: pg.PoolClient) => Promise<MessageInitShape<O>>,
): Promise<MessageInitShape<O>> {
  const { requestId } = input;
  if (requestId === "") return withTransaction(pool, fn);
  if (!isUuid(requestId)) {
    throw invalidArgument("request_id must be a UUID", [
      { field: "request_id", description: "must be a UUID" },
    ]);
  }
  const who = principalKey(p);
  const bare = create(input.schema, {
    ...(input.message as object),
    requestId: "",
  } as unknown as MessageInitShape<I>);
  const hash = requestHash(method, toBinary(input.schema, bare));
  return withTransaction(pool, async (c) => {
    await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`notification:${who}:${requestId}`]);
    const prior = await findReplay(c, who, requestId, method, hash);
    if (prior.kind === "replay") return fromBinary(output, prior.response) as MessageInitShape<O>;
    if (prior.kind === "conflict") {
      throw invalidArgument("request_id was already used for a different request", [
        { field: "request_id", description: "reused for a different request" },
      ]);
    }
    const res = await fn(c);
    await saveResponse(c, who, requestId, method, hash, toBinary(output, create(output, res)));
    return res;
  });
}
