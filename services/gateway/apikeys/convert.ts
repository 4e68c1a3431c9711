/** Rows to messages; never a secret or its hash. */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type ApiKey, ApiKeySchema, ApiKeyState } from "../../../gen/codex/gateway/v1/api_key_pb.js";
import { roleToProto } from "../auth/roles.js";
import { type ApiKeyRow, type KeyState, stateOf } from "./store.js";

const STATE: Record<KeyState, ApiKeyState> = {
  active: ApiKeyState.ACTIVE,
  revoked: ApiKeyState.REVOKED,
  expired: ApiKeyState.EXPIRED,
};

/** The filter value of a proto state; UNSPECIFIED means every state. */
export function stateFromProto(state: ApiKeyState): KeyState | undefined {
  return (Object.keys(STATE) as KeyState[]).find((k) => STATE[k] === state);
}

/** Opaque version tag: changes whenever the key does. */
export function etagOf(row: Pick<ApiKeyRow, "id" | "version">): string {
  return createHash("sha256").update(`${row.id}:${row.version}`).digest("base64url").slice(0, 16);
}

export function toApiKey(row: ApiKeyRow, now: Date): ApiKey {
  const key = create(ApiKeySchema, {
    id: row.id,
    projectId: row.projectId,
    displayName: row.displayName,
    role: roleToProto(row.role),
    scopes: row.scopes,
    keyPrefix: row.keyPrefix,
    state: STATE[stateOf(row, now)],
    requestsPerMinute: row.requestsPerMinute,
    createTime: timestampFromDate(row.createTime),
    expireTime: timestampFromDate(row.expireTime),
    revokedBy: row.revokedBy,
    revokeReason: row.revokeReason,
    createdBy: row.createdBy,
    etag: etagOf(row),
  });
  if (row.revokeTime) key.revokeTime = timestampFromDate(row.revokeTime);
  if (row.lastUseTime) key.lastUseTime = timestampFromDate(row.lastUseTime);
  return key;
}
