import type { Principal } from "../../../mesh/context.js";

/**
 * Who may do what with subscriptions, deliveries and dead letters. Pure.
 *
 * - `read` (get, list, deliveries, dead letters): any role in the subscription's project;
 * - `maintain` (create, update, delete, test, redeliver): MAINTAINER or OWNER there;
 * - subscriptions without a project: platform admins only, for everything.
 * Platform admins are SERVICE principals and principals whose `projectRoles["*"]` is "admin"
 * (the gateway's convention, services/gateway/auth/roles.ts). Role names are compared
 * case-insensitively, with or without a "MEMBER_ROLE_" / "ROLE_" prefix; unknown names grant
 * nothing.
 */
export type Access = "read" | "maintain";

const MAINTAIN_ROLES = new Set(["MAINTAINER", "OWNER"]);
const KNOWN_ROLES = new Set(["OWNER", "MAINTAINER", "VIEWER", "AGENT", "ADMIN"]);

function normalise(role: string | undefined): string | undefined {
  if (role === undefined || role === "") return undefined;
  const name = role.toUpperCase().replace(/^(MEMBER_ROLE_|ROLE_)/, "");
  return KNOWN_ROLES.has(name) ? name : undefined;
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
