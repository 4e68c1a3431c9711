import type { Principal } from "../../../mesh/context.js";
import { permissionDenied, unauthenticated } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import { canReadProject, isPlatformAdmin } from "../domain/authz.js";

/** The caller, or UNAUTHENTICATED: the trail is never readable anonymously. */
export function requirePrincipal(ctx: CallContext): Principal {
  if (ctx.principal === undefined) throw unauthenticated();
  return ctx.principal;
}

/** PERMISSION_DENIED unless the caller is a platform admin. */
export function requireAdmin(p: Principal, what: string): void {
  if (!isPlatformAdmin(p)) {
    throw permissionDenied(`${what} requires a platform admin`, "PLATFORM_ADMIN_REQUIRED");
  }
}

/**
 * PERMISSION_DENIED unless the caller may read `projectId`'s records (an empty id means
 * records outside any project, or all projects: admins only).
 */
export function requireProjectReader(p: Principal, projectId: string): void {
  if (p.type === "api_key") {
    throw permissionDenied("API keys cannot read the audit trail", "API_KEY_NOT_ALLOWED");
  }
  if (projectId === "") requireAdmin(p, "reading records of all projects (no project_id)");
  if (!canReadProject(p, projectId)) {
    throw permissionDenied(
      `reading the audit trail of project "${projectId}" requires the OWNER or MAINTAINER role`,
      "ROLE_REQUIRED",
      { project_id: projectId, required: "MAINTAINER" },
    );
  }
}
