/** What the handlers share: who calls, may they, and the common lookups and checks. */
import type { Principal } from "../../../mesh/context.js";
import { invalidArgument, notFound, permissionDenied, unauthenticated } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import type { Core } from "../core.js";
import { isPlatformAdmin, mayAccessProject, type ProjectAccess } from "../domain/authz.js";
import { type Problem, UUID } from "../domain/validation.js";
import { getRun, type RunRow, toRun } from "../store/runs.js";

/** The authenticated caller; UNAUTHENTICATED when none was forwarded. */
export function callerOf(ctx: CallContext): Principal {
  if (!ctx.principal) throw unauthenticated("a principal is required (call through the gateway)");
  return ctx.principal;
}

/** Internal RPCs: mesh services only. */
export function requireService(ctx: CallContext, rpc: string): Principal {
  const p = callerOf(ctx);
  if (p.type !== "service")
    throw permissionDenied(
      `${rpc} is internal: it requires a service principal`,
      "SERVICE_PRINCIPAL_REQUIRED",
    );
  return p;
}

/** Fleet administration: platform admins only. */
export function requireAdmin(ctx: CallContext, rpc: string): Principal {
  const p = callerOf(ctx);
  if (!isPlatformAdmin(p))
    throw permissionDenied(`${rpc} requires a platform administrator`, "ADMIN_REQUIRED");
  return p;
}

export function throwIfProblems(message: string, problems: Problem[]): void {
  if (problems.length > 0) throw invalidArgument(message, problems);
}

/** A run the caller may read (or maintain); NOT_FOUND hides runs of projects it cannot read. */
export async function runFor(
  core: Core,
  principal: Principal,
  runId: string,
  access: ProjectAccess,
): Promise<RunRow> {
  const row = UUID.test(runId) ? await getRun(core.pool, runId) : undefined;
  if (!row || !mayAccessProject(principal, row.project_id, "read")) throw notFound("run", runId);
  checkAccess(principal, row.project_id, access);
  return row;
}

/** PERMISSION_DENIED when the caller may read but not maintain the project. */
export function checkAccess(principal: Principal, projectId: string, access: ProjectAccess): void {
  if (!mayAccessProject(principal, projectId, access)) {
    throw permissionDenied(`this requires MAINTAINER in project ${projectId}`, "ROLE_REQUIRED", {
      required: "MAINTAINER",
      project_id: projectId,
    });
  }
}

/** The Run with its live lease expiry from the lease store. */
export async function liveRun(core: Core, row: RunRow) {
  const [expiry] = row.state === 2 || row.state === 3 ? await core.leases.expiries([row.id]) : [undefined];
  return toRun(row, expiry);
}
