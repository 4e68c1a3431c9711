/**
 * Who may manage a project's keys, checked by the ApiKeyService itself (the gateway's policy
 * table checks the same at the front door; this second check holds for callers reaching the
 * gateway's own server from inside the mesh). Roles are asked of the project service, not
 * read from the forwarded principal, whose list may be truncated.
 */
import type { Principal } from "../../../mesh/context.js";
import { notFound, permissionDenied, unauthenticated } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import type { Membership, MembershipSource } from "../auth/memberships.js";
import { isPlatformAdmin } from "../auth/principal.js";
import { atLeast } from "../auth/roles.js";

/** The authenticated caller; UNAUTHENTICATED when no principal was forwarded. */
export function callerOf(ctx: CallContext): Principal {
  if (!ctx.principal) throw unauthenticated("a principal is required (call through the gateway)");
  return ctx.principal;
}

export interface AccessNeed {
  /** Least role in the project. */
  role: "owner" | "maintainer";
  /** Whether platform admins pass without a membership (never for creating keys: a key needs a member creator). */
  admin: boolean;
}

/**
 * Checks the caller's role in the project. API keys never manage keys. A missing project is
 * NOT_FOUND; a missing role is PERMISSION_DENIED whether or not the key asked about exists.
 */
export async function access(
  memberships: Pick<MembershipSource, "roleIn">,
  principal: Principal,
  projectId: string,
  need: AccessNeed,
): Promise<Membership> {
  if (principal.type === "api_key") {
    throw permissionDenied("API keys cannot manage API keys", "API_KEY_NOT_ALLOWED");
  }
  const m = await memberships.roleIn(projectId, principal.id);
  if (!m) throw notFound("project", projectId);
  const ok = need.role === "owner" ? m.role === "owner" : atLeast(m.role, "maintainer");
  if (ok || (need.admin && isPlatformAdmin(principal))) return m;
  const required = need.role.toUpperCase();
  throw permissionDenied(`requires ${required} in project ${projectId}`, "ROLE_REQUIRED", {
    required,
    project_id: projectId,
  });
}
