/**
 * Who may do what. Pure: decisions from the signed principal alone (the gateway forwards each
 * caller's project roles), so no lookup in another service's data is needed.
 *
 * - Runs, logs and info requests belong to the run's project: any role there reads them (a
 *   viewer and up); MAINTAINER or OWNER cancels runs and answers info requests.
 * - Platform admins (SERVICE principals, and principals with `projectRoles["*"] = "admin"`) may
 *   do everything people may; EnqueueRun is for SERVICE principals only (the scheduler).
 * - The fleet is not project-scoped: any person or program reads agents, and an agent reads
 *   itself; drain, undrain and deregister are platform-admin operations.
 * - Agent calls are for AGENT principals only and concern their own runs (checked by lease).
 * Role names are compared case-insensitively, with or without a MEMBER_ROLE_ prefix.
 */
import type { Principal } from "../../../mesh/context.js";

export type ProjectAccess = "read" | "maintain";

function roleName(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  return raw.toLowerCase().replace(/^member_role_/, "");
}

export function isPlatformAdmin(p: Principal): boolean {
  return p.type === "service" || roleName(p.projectRoles?.["*"]) === "admin";
}

/** Whether `p` may read or maintain the runs of `projectId`. Agents never pass. */
export function mayAccessProject(p: Principal, projectId: string, access: ProjectAccess): boolean {
  if (p.type === "agent") return false;
  if (isPlatformAdmin(p)) return true;
  const role = roleName(p.projectRoles?.[projectId]);
  if (role === "owner" || role === "maintainer") return true;
  return access === "read" && role === "viewer";
}

/** Projects whose runs `p` may read: "all" for platform admins. */
export function readableProjects(p: Principal): "all" | string[] {
  if (p.type === "agent") return [];
  if (isPlatformAdmin(p)) return "all";
  return Object.entries(p.projectRoles ?? {})
    .filter(
      ([project, role]) =>
        project !== "*" && ["owner", "maintainer", "viewer"].includes(roleName(role) ?? ""),
    )
    .map(([project]) => project);
}

/** Whether `p` may read agent `agentId`. */
export function mayReadAgent(p: Principal, agentId: string): boolean {
  return p.type === "agent" ? p.id === agentId : true;
}

/** Whether `p` may register agents (the gateway has checked the agent credential). */
export function mayRegister(p: Principal): boolean {
  if (p.type === "agent" || p.type === "service") return true;
  return p.type === "api_key" && Object.values(p.projectRoles ?? {}).some((r) => roleName(r) === "agent");
}
