import type { Principal } from "../../mesh/context.js";
import type { CallContext } from "../../mesh/grpc/types.js";
import { notFound, permissionDenied, unauthenticated } from "./errors.js";

/**
 * Who may do what, from the project roles the gateway resolved for the caller
 * (`principal.projectRoles[projectId]`):
 *   read   — any project role (owner, maintainer, viewer, agent);
 *   write  — owner, maintainer (agents may also upload artifacts);
 *   admin  — owner (approval policy, risk rules);
 * principals of type "service" (scheduler, saga) may do anything except decide on approvals,
 * which must come from people. A caller with no role in the project gets NOT_FOUND, so the
 * existence of another project's items does not leak; a member lacking the role gets
 * PERMISSION_DENIED.
 */
export type Access = "read" | "write" | "upload" | "admin";

const ROLES_FOR: Record<Access, readonly string[]> = {
  read: ["owner", "maintainer", "viewer", "agent"],
  write: ["owner", "maintainer"],
  upload: ["owner", "maintainer", "agent"],
  admin: ["owner"],
};

/** Roles allowed to decide when a policy names none: every member except read-only ones. */
export const DEFAULT_APPROVER_ROLES: readonly string[] = ["owner", "maintainer"];

/** The authenticated caller, or UNAUTHENTICATED. */
export function callerOf(ctx: Pick<CallContext, "principal">): Principal {
  if (!ctx.principal) throw unauthenticated();
  return ctx.principal;
}

/** Stable actor id for records and events: user subject, API key id, agent id, or "service:<name>". */
export function actorId(p: Principal): string {
  return p.type === "service" ? `service:${p.id}` : p.id;
}

export function isService(p: Principal): boolean {
  return p.type === "service";
}

/** The caller's role in a project ("" when none). */
export function roleIn(p: Principal, projectId: string): string {
  const roles = p.projectRoles ?? {};
  return Object.hasOwn(roles, projectId) ? (roles[projectId] ?? "") : "";
}

/** Projects the caller can read; undefined means every project (services). */
export function readableProjects(p: Principal): string[] | undefined {
  if (isService(p)) return undefined;
  return Object.entries(p.projectRoles ?? {})
    .filter(([, role]) => ROLES_FOR.read.includes(role))
    .map(([project]) => project);
}

/**
 * Throws unless `p` may perform `access` in `projectId`. `resource` names what the caller
 * asked for, so a non-member's NOT_FOUND looks exactly like a missing resource.
 */
export function authorize(
  p: Principal,
  projectId: string,
  access: Access,
  resource: { type: string; name: string },
): void {
  if (isService(p)) return;
  const role = roleIn(p, projectId);
  if (!ROLES_FOR.read.includes(role)) throw notFound(resource.type, resource.name);
  if (!ROLES_FOR[access].includes(role)) {
    throw permissionDenied(
      `role "${role}" may not ${verb(access)} in project ${projectId}`,
      "PERMISSION_DENIED",
      {
        role,
        required: ROLES_FOR[access].join(","),
      },
    );
  }
}

function verb(access: Access): string {
  switch (access) {
    case "read":
      return "read work items";
    case "write":
      return "change work items";
    case "upload":
      return "upload artifacts";
    case "admin":
      return "change project policies";
  }
}
