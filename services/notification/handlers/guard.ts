import type pg from "pg";
import type { Principal } from "../../../mesh/context.js";
import { notFound, permissionDenied, unauthenticated } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { type Access, allowed, isPlatformAdmin } from "../domain/authz.js";
import type { SubscriptionRecord } from "../store/subscription-record.js";
import { getSubscription } from "../store/subscriptions.js";

/** The caller, or UNAUTHENTICATED. */
export function principalOf(ctx: CallContext): Principal {
  if (ctx.principal === undefined) throw unauthenticated();
  return ctx.principal;
}

/** PERMISSION_DENIED unless `p` may `access` resources of `projectId`. */
export function authorize(p: Principal, projectId: string, access: Access): void {
  if (allowed(p, projectId, access)) return;
  const required =
    projectId === "" ? "platform admin" : access === "read" ? "any project role" : "MAINTAINER";
  throw permissionDenied(
    `requires ${required}${projectId === "" ? "" : ` in project ${projectId}`}`,
    "ROLE_REQUIRED",
    {
      required,
      project_id: projectId,
    },
  );
}

/**
 * The error for a subscription that does not exist: NOT_FOUND for platform admins, otherwise
 * PERMISSION_DENIED — a caller without a role cannot tell a missing id from one it may not see.
 */
export function missingSubscription(p: Principal, id: string): Error {
  if (isPlatformAdmin(p)) return notFound("subscription", id);
  return permissionDenied("requires a role in the subscription's project", "ROLE_REQUIRED");
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(s: string): boolean {
  return UUID.test(s);
}

/** Identity used for idempotency keys. */
export function principalKey(p: Principal): string {
  return `${p.type}:${p.id}`;
}

/** A subscription by id; undefined for ids that are not UUIDs (they cannot exist). */
export function loadSubscription(
  db: pg.Pool | pg.ClientBase,
  id: string,
  opts: { includeDeleted?: boolean; forUpdate?: boolean } = {},
): Promise<SubscriptionRecord | undefined> {
  return isUuid(id) ? getSubscription(db, id, opts) : Promise.resolve(undefined);
}
