import type { Principal } from "../../../mesh/context.js";

/**
 * Who may do what with subscriptions, deliveries and dead letters. Pure.
 *
 * - `read` (get, list, deliveries, dead letters): any role in the subscription's project;
 * - `maintain` (create, update, delete, test, redeliver): MAINTAINER or OWNER there;
 * - subscriptions without a project: platform admins only, for everything.
 * Platform admins are SERVICE principals and principals whose `projectRoles["*"]` is "admin"
 * (the contract names platform admins but not how they are identified). Role names are
 * compared case-insensitively, with or without a "ROLE_" prefix.
 */
export type Access = "read" | "maintain";

const MAINTAIN_ROLES = new Set(["MAINTAINER", "OWNER"]);

function normalise(role: string | undefined): string | undefined {
  if (role === undefined || role === "") return undefined;
  return role.toUpperCase().replace(/^ROLE_/, "");
}

/** The principal's role in a project, normalised ("OWNER", "MAINTAINER", "VIEWER", ...). */
export function roleIn(p: Principal, projectId: string): string | undefined {
  return normalise(p.projectRoles?.[projectId]);
}

/** Platform admin: sees and manages every project and all-project subscriptions. */
export function isPlatformAdmin(p: Principal): boolean {
  return p.type === "service" || roleIn(p, "*") === "ADMIN";
}

/** Whether `p` may perform `access` on resources of `projectId` ("" = all projects). */
export function allowed(p: Principal, projectId: string, access: Access): boolean {
  if (isPlatformAdmin(p)) return true;
  if (projectId === "" || projectId === "*") return false;
  const role = roleIn(p, projectId);
  if (role === undefined) return false;
  return access === "read" || MAINTAIN_ROLES.has(role);
}

/** Projects whose resources `p` may read; `"all"` for admins (all-project ones included). */
export function readableProjects(p: Principal): "all" | string[] {
  if (isPlatformAdmin(p)) return "all";
  return Object.entries(p.projectRoles ?? {})
    .filter(([project, role]) => project !== "*" && normalise(role) !== undefined)
    .map(([project]) => project);
}
