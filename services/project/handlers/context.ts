/**
 * What every handler shares: its dependencies, who is calling, whether they may, and the
 * transaction runner that stages events and honours request ids.
 */
import type pg from "pg";
import { MemberRole } from "../../../gen/codex/project/v1/member_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { notFound, permissionDenied, unauthenticated } from "../../../mesh/errors.js";
import type { CallContext } from "../../../mesh/grpc/types.js";
import type { Logger } from "../../../mesh/logging.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { authorize, parseRoleName, type Role, type Rpc } from "../domain/authz.js";
import type { Limits } from "../domain/quota-window.js";
import type { ProjectEvent } from "../events.js";
import type { Db } from "../store/db.js";
import { getMember } from "../store/members.js";
import { getProject, type ProjectRow } from "../store/projects.js";
import { stageProjectEvent } from "./outbox.js";

/** Everything handlers need, built once by service.ts. */
export interface Deps {
  pool: pg.Pool;
  subjects: Subjects;
  logger: Logger;
  /** Quota limits of projects that never had SetQuota called. */
  defaults: Limits;
  /** ACTIVE projects one user may have created. */
  maxProjectsPerPrincipal: number;
  /** RetryInfo delay when max_concurrent_runs refuses a reservation. */
  concurrencyRetryMs: number;
  now(): Date;
}

/** The authenticated caller; UNAUTHENTICATED when the gateway forwarded no principal. */
export function callerOf(ctx: CallContext): Principal {
  if (!ctx.principal) throw unauthenticated("a principal is required (call through the gateway)");
  return ctx.principal;
}

const ROLE_TO_PROTO: Record<Role, MemberRole> = {
  OWNER: MemberRole.OWNER,
  MAINTAINER: MemberRole.MAINTAINER,
  VIEWER: MemberRole.VIEWER,
  AGENT: MemberRole.AGENT,
};

export function roleToProto(role: Role): MemberRole {
  return ROLE_TO_PROTO[role];
}

export function roleFromProto(role: number): Role | undefined {
  return (Object.keys(ROLE_TO_PROTO) as Role[]).find((r) => ROLE_TO_PROTO[r] === role);
}

/**
 * The caller's role in a project: API keys carry theirs in the signed principal (they are
 * not members); users and agents have a membership row; services have none (they are
 * platform admins, see domain/authz.ts).
 */
export async function roleIn(db: Db, principal: Principal, projectId: string): Promise<Role | undefined> {
  switch (principal.type) {
    case "api_key":
      return parseRoleName(principal.projectRoles?.[projectId]);
    case "service":
      return undefined;
    default: {
      const member = await getMember(db, projectId, principal.id);
      return member ? roleFromProto(member.role) : undefined;
    }
  }
}

/** Options of {@link access}. */
export interface AccessOptions {
  /** Lock the project row (serializes member, vision and requirements changes). */
  lock?: boolean;
  /** The call targets the caller's own membership. */
  self?: boolean;
}

/**
 * Loads a project and checks the caller may run `rpc` on it. A missing project and one the
 * caller is not a member of both answer NOT_FOUND, so existence does not leak; a member
 * without the role gets PERMISSION_DENIED naming the role required.
 */
export async function access(
  db: Db,
  principal: Principal,
  projectId: string,
  rpc: Rpc,
  opts: AccessOptions = {},
): Promise<{ project: ProjectRow; role: Role | undefined }> {
  const project = await getProject(db, projectId, opts.lock === true);
  if (!project) throw notFound("project", projectId);
  const role = await roleIn(db, principal, projectId);
  const decision = authorize(rpc, principal, role, opts.self === true);
  if (!decision.allow) {
    if (decision.outcome === "not_found") throw notFound("project", projectId);
    throw permissionDenied(
      `${rpc} requires ${decision.required} in project "${project.name}"`,
      "ROLE_REQUIRED",
      {
        required: decision.required,
        project_id: projectId,
      },
    );
  }
  return { project, role };
}

/** Refuses callers other than mesh services, before anything is looked up. */
export function requireInternal(principal: Principal, rpc: Rpc): void {
  const decision = authorize(rpc, principal, undefined);
  if (!decision.allow) {
    throw permissionDenied(
      `${rpc} is internal: it requires a service principal`,
      "SERVICE_PRINCIPAL_REQUIRED",
    );
  }
}

/** One write transaction: its client, one clock reading, and the events it stages. */
export interface Tx {
  readonly client: pg.PoolClient;
  readonly now: Date;
  /** Stages an event in the outbox, committed or rolled back with the change. */
  emit(event: ProjectEvent): Promise<void>;
}

/** Runs `fn` in a transaction whose events carry the caller as actor and the call's correlation id. */
export function inTransaction<T>(
  deps: Deps,
  ctx: CallContext,
  principal: Principal,
  fn: (tx: Tx) => Promise<T>,
): Promise<T> {
  const now = deps.now();
  return withTransaction(deps.pool, (client) =>
    fn({
      client,
      now,
      emit: (event) => stageProjectEvent(client, deps.subjects, { principal, ctx, occurredAt: now }, event),
    }),
  );
}
