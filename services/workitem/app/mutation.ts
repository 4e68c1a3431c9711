import { createHash } from "node:crypto";
import { type DescMessage, fromBinary, type MessageShape, toBinary, toJson } from "@bufbuild/protobuf";
import type pg from "pg";
import type { Principal } from "../../../mesh/context.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { actorId } from "../authz.js";
import { stableJson } from "../domain/stable-json.js";
import { failedPrecondition, invalidArgument } from "../errors.js";
import { claimRequestId, storeResponse } from "../store/idempotency.js";
import type { Deps } from "./deps.js";

/** How long a request_id is remembered, as the contract promises. */
export const REQUEST_ID_RETENTION_MS = 24 * 60 * 60 * 1000;
const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** A mutating RPC: its name, request (for the fingerprint) and the response schema (for replay). */
export interface Mutation<Req extends DescMessage, Res extends DescMessage> {
  method: string;
  requestId: string;
  requestSchema: Req;
  request: MessageShape<Req>;
  responseSchema: Res;
}

/**
 * Runs a mutation in one transaction, made idempotent by its request_id: the key is claimed
 * in the same transaction as the change and its events, so a retry either replays the
 * committed response or, if the first attempt rolled back, runs again. The same key with a
 * different request is refused (IDEMPOTENCY_KEY_REUSED).
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
  const requestHash = fingerprint(m.requestSchema, m.request);
  const who = actorId(principal);
  return withTransaction(deps.pool, async (tx) => {
    const now = deps.now();
    const claim = await claimRequestId(tx, {
      principal: who,
      requestId: m.requestId,
      method: m.method,
      requestHash,
      now,
      expiredBefore: new Date(now.getTime() - REQUEST_ID_RETENTION_MS),
    });
    if (claim.kind === "replay") {
      if (claim.method !== m.method || claim.requestHash !== requestHash || claim.response === null) {
        throw failedPrecondition(
          "IDEMPOTENCY_KEY_REUSED",
          `request_id/${m.requestId}`,
          `request_id ${m.requestId} was already used with a different request`,
        );
      }
      return fromBinary(m.responseSchema, claim.response);
    }
    const response = await work(tx);
    await storeResponse(tx, who, m.requestId, toBinary(m.responseSchema, response));
    return response;
  });
}

/** Canonical fingerprint of a request, request_id excluded (it is the key, not the content). */
function fingerprint<Req extends DescMessage>(schema: Req, request: MessageShape<Req>): string {
  const json = toJson(schema, request) as Record<string, unknown>;
  delete json.requestId;
  return createHash("sha256").update(stableJson(json)).digest("hex");
}
