import type { Principal } from "../../../mesh/context.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { notFound, permissionDenied, unauthenticated } from "../errors.js";

/**
 * Who may do what, from the project roles the gateway resolved into the signed principal
 * (`principal.projectRoles[projectId]`): reading the queue needs any role (viewer and up),
 * scheduling, requeueing and cancelling need maintainer or owner. Principals of type
 * "service" are the orchestrator's own services and may do anything. A caller without a role
 * in the project gets NOT_FOUND, so other projects' tasks do not leak.
 */
export type Access = "read" | "write";

const ROLES: Record<Access, readonly string[]> = {
  read: ["owner", "maintainer", "viewer", "agent"],
  write: ["owner", "maintainer"],
};

export function callerOf(ctx: Pick<CallContext, "principal">): Principal {
  if (!ctx.principal) throw unauthenticated();
  return ctx.principal;
}

/** "MAINTAINER", "MEMBER_ROLE_MAINTAINER" and "maintainer" all name the same role. */
export function roleIn(p: Principal, projectId: string): string {
  const raw = Object.hasOwn(p.projectRoles ?? {}, projectId) ? (p.projectRoles?.[projectId] ?? "") : "";
  return raw.toLowerCase().replace(/^member_role_/, "");
}

export function authorize(
  p: Principal,
  projectId: string,
  access: Access,
  resource: { type: string; name: string },
) {
  if (p.type === "service") return;
  const role = roleIn(p, projectId);
  if (!ROLES.read.includes(role)) throw notFound(resource.type, resource.name);
  if (!ROLES[access].includes(role)) {
    throw permissionDenied(
      `role "${role}" may not ${access === "write" ? "change the queue" : "read"} in project ${projectId}`,
      {
        role,
        required: ROLES[access].join(","),
      },
    );
  }
}

/** Projects whose queue the caller may read; undefined means all (services). */
export function readableProjects(p: Principal): string[] | undefined {
  if (p.type === "service") return undefined;
  return Object.keys(p.projectRoles ?? {}).filter((id) => ROLES.read.includes(roleIn(p, id)));
}

const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** Idempotency keys: 1-128 printable ASCII characters (empty = none, where optional). */
export function validRequestId(id: string): boolean {
  return REQUEST_ID.test(id);
}
