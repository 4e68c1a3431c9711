import type { Principal } from "../../../mesh/context.js";

/**
 * Who may read what (mirrors the AuditService proto comment and docs/adr/0008-audit-trail.md).
 *
 * - Platform admins read everything. Principal has no admin flag yet, so an admin is a SERVICE
 *   principal (mesh workloads and admin tooling, as in the project service) or a principal
 *   whose gateway-signed `projectRoles["*"]` is "admin".
 * - A project's records are readable by its OWNERs and MAINTAINERs, from `projectRoles`
 *   (the audit service cannot ask the project service without coupling to it).
 * - API keys never read the audit trail, whatever roles they carry, and are never admins.
 */
export function isPlatformAdmin(p: Principal): boolean {
  if (p.type === "api_key") return false;
  return p.type === "service" || p.projectRoles?.["*"]?.toLowerCase() === "admin";
}

/** A role name as the gateway writes it ("OWNER", "owner", "MEMBER_ROLE_OWNER"), normalised. */
function roleName(raw: string | undefined): string | undefined {
  return raw?.toUpperCase().replace(/^MEMBER_ROLE_/, "");
}

/** Whether `p` may read records of `projectId` ("" = records outside any project: admins only). */
export function canReadProject(p: Principal, projectId: string): boolean {
  if (p.type === "api_key") return false;
  if (isPlatformAdmin(p)) return true;
  if (projectId === "") return false;
  const role = roleName(p.projectRoles?.[projectId]);
  return role === "OWNER" || role === "MAINTAINER";
}
