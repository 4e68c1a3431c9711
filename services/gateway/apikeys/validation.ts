/** Checks of CreateApiKey / RevokeApiKey / ListApiKeys input, collecting every problem at once. */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ApiKey } from "../../../gen/codex/gateway/v1/api_key_pb.js";
import { MemberRole } from "../../../gen/codex/project/v1/member_pb.js";
import { type FieldViolation, invalidArgument } from "../../../mesh/errors.js";
import { type RoleName, roleFromProto } from "../auth/roles.js";
import { isValidScope } from "../auth/scopes.js";

export const LIMITS = {
  displayName: 100,
  scopes: 50,
  maxRpm: 100_000,
  defaultLifetimeMs: 90 * 86_400_000,
  maxLifetimeMs: 366 * 86_400_000,
  activeKeysPerProject: 100,
  reason: 1_000,
  defaultPageSize: 50,
  maxPageSize: 500,
  requestIdRetentionMs: 24 * 3_600_000,
} as const;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Collects field violations; `throwIfAny` raises one INVALID_ARGUMENT naming them all. */
export class Violations {
  readonly list: FieldViolation[] = [];
  add(field: string, description: string): void {
    this.list.push({ field, description });
  }
  throwIfAny(message = "invalid request"): void {
    if (this.list.length > 0) throw invalidArgument(message, this.list);
  }
}

export interface NewKeySpec {
  displayName: string;
  role: Exclude<RoleName, "owner">;
  scopes: string[];
  requestsPerMinute: number;
  expireTime: Date;
}

/** Validates a CreateApiKey request's key against the clock reading `now`. */
export function validateNewKey(v: Violations, key: ApiKey | undefined, now: Date): NewKeySpec | undefined {
  if (!key) {
    v.add("api_key", "is required");
    return undefined;
  }
  const displayName = key.displayName.trim();
  if (displayName.length === 0 || displayName.length > LIMITS.displayName) {
    v.add("api_key.display_name", `must be 1-${LIMITS.displayName} characters`);
  }
  const role = roleFromProto(key.role);
  if (key.role === MemberRole.OWNER) {
    v.add(
      "api_key.role",
      "OWNER is not allowed: owner actions need a person (use MAINTAINER, VIEWER or AGENT)",
    );
  } else if (role === undefined) {
    v.add("api_key.role", "is required: MEMBER_ROLE_MAINTAINER, MEMBER_ROLE_VIEWER or MEMBER_ROLE_AGENT");
  }
  if (key.scopes.length > LIMITS.scopes) v.add("api_key.scopes", `at most ${LIMITS.scopes} entries`);
  key.scopes.forEach((s, i) => {
    if (!isValidScope(s)) {
      v.add(`api_key.scopes[${i}]`, "must be '<package>.<Service>/<Method>', '<package>.<Service>/*' or '*'");
    }
  });
  if (key.requestsPerMinute < 0 || key.requestsPerMinute > LIMITS.maxRpm) {
    v.add("api_key.requests_per_minute", `must be 0-${LIMITS.maxRpm} (0 uses the gateway default)`);
  }
  let expireTime = new Date(now.getTime() + LIMITS.defaultLifetimeMs);
  if (key.expireTime) {
    expireTime = timestampDate(key.expireTime);
    if (expireTime.getTime() <= now.getTime()) v.add("api_key.expire_time", "must be in the future");
    else if (expireTime.getTime() > now.getTime() + LIMITS.maxLifetimeMs) {
      v.add("api_key.expire_time", "must be at most 366 days from now");
    }
  }
  if (role === undefined || role === "owner") return undefined;
  return {
    displayName,
    role,
    scopes: [...new Set(key.scopes)],
    requestsPerMinute: key.requestsPerMinute,
    expireTime,
  };
}

export function checkProjectId(v: Violations, projectId: string): void {
  if (projectId === "" || projectId.length > 128) v.add("project_id", "is required");
}

export function checkRequestId(v: Violations, requestId: string): void {
  if (requestId !== "" && !UUID.test(requestId)) v.add("request_id", "must be a UUID");
}

export function checkReason(v: Violations, reason: string): void {
  if (reason.length > LIMITS.reason) v.add("reason", `at most ${LIMITS.reason} characters`);
}

/** Page size as the contract defines it: default 50, capped at 500, negative refused. */
export function pageSize(v: Violations, size: number): number {
  if (size < 0) v.add("page_size", "must not be negative");
  if (size <= 0) return LIMITS.defaultPageSize;
  return Math.min(size, LIMITS.maxPageSize);
}
