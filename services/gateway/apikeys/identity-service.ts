/**
 * codex.gateway.v1.IdentityService: tells callers who the gateway thinks they are.
 *
 * Roles are re-read here rather than taken from the forwarded principal, whose list is bounded
 * (auth/principal.ts); project names come from ListProjects made as the caller (best effort:
 * names stay empty if the project service cannot answer).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { ActorType } from "../../../gen/codex/events/v1/envelope_pb.js";
import {
  AuthMethod,
  type IdentityService,
  type ProjectRole,
  ProjectRoleSchema,
  WhoAmIResponseSchema,
} from "../../../gen/codex/gateway/v1/identity_service_pb.js";
import type { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import type { Principal } from "../../../mesh/context.js";
import type { ServiceClient, ServiceImpl } from "../../../mesh/grpc/types.js";
import type { Logger } from "../../../mesh/logging.js";
import type { MembershipSource } from "../auth/memberships.js";
import { forwardedRole, gatewayView, isPlatformAdmin } from "../auth/principal.js";
import { type RoleName, roleToProto } from "../auth/roles.js";
import { callerOf } from "./access.js";
import { toApiKey } from "./convert.js";
import { type Db, getKey } from "./store.js";

export interface IdentityServiceDeps {
  db: Db;
  memberships: MembershipSource;
  projects: Pick<ServiceClient<typeof ProjectService>, "listProjects">;
  logger?: Pick<Logger, "warn">;
  now?: () => Date;
}

const TYPES: Record<Principal["type"], ActorType> = {
  user: ActorType.USER,
  api_key: ActorType.API_KEY,
  agent: ActorType.AGENT,
  service: ActorType.SERVICE,
};

const METHODS = { jwt: AuthMethod.JWT, api_key: AuthMethod.API_KEY, service: AuthMethod.SERVICE } as const;

export function identityService(deps: IdentityServiceDeps): ServiceImpl<typeof IdentityService> {
  return {
    async whoAmI(_req, ctx) {
      const p = gatewayView(callerOf(ctx));
      const res = create(WhoAmIResponseSchema, {
        principalId: p.id,
        principalType: TYPES[p.type],
        displayName: p.displayName ?? "",
        authMethod:
          METHODS[
            p.authMethod ?? (p.type === "api_key" ? "api_key" : p.type === "service" ? "service" : "jwt")
          ],
        platformAdmin: isPlatformAdmin(p),
      });
      if (p.expiresAt !== undefined) res.expireTime = timestampFromMs(p.expiresAt);
      if (p.type === "api_key") {
        const row = await getKey(deps.db, p.id);
        if (row) res.apiKey = toApiKey(row, deps.now ? deps.now() : new Date());
        const projectId = p.apiKey?.projectId ?? row?.projectId;
        const role = projectId === undefined ? undefined : forwardedRole(p, projectId);
        if (projectId !== undefined && role !== undefined) {
          const m = await deps.memberships.roleIn(projectId, row?.createdBy ?? p.id).catch(() => undefined);
          res.projectRoles = [projectRole(projectId, role, m?.projectName ?? "")];
        }
        return res;
      }
      if (p.type === "service") return res;
      const { roles, truncated } = await deps.memberships.rolesOf(p.id);
      const names = await projectNames(deps, Object.keys(roles));
      res.projectRoles = Object.entries(roles)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([id, role]) => projectRole(id, role, names.get(id) ?? ""));
      res.projectRolesTruncated = truncated;
      return res;
    },
  };
}

function projectRole(projectId: string, role: RoleName, projectName: string): ProjectRole {
  return create(ProjectRoleSchema, { projectId, role: roleToProto(role), projectName });
}

/** Names of the caller's projects, read as the caller (at most two pages of 500). */
async function projectNames(deps: IdentityServiceDeps, ids: string[]): Promise<Map<string, string>> {
  const wanted = new Set(ids);
  const names = new Map<string, string>();
  if (wanted.size === 0) return names;
  let pageToken = "";
  try {
    for (let page = 0; page < 2; page++) {
      const res = await deps.projects.listProjects({ pageSize: 500, pageToken });
      for (const project of res.projects) if (wanted.has(project.id)) names.set(project.id, project.name);
      pageToken = res.nextPageToken;
      if (pageToken === "" || names.size === wanted.size) break;
    }
  } catch (err) {
    deps.logger?.warn({ err }, "WhoAmI: project names unavailable");
  }
  return names;
}
