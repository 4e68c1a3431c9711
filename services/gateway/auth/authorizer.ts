/**
 * Applies the policy table (policy.ts) to one call. Refusals are PERMISSION_DENIED with a
 * google.rpc.ErrorInfo reason a client can act on:
 * NOT_IN_POLICY, USER_REQUIRED, ADMIN_REQUIRED, AGENT_ONLY (people on agent RPCs),
 * AGENTS_NOT_ALLOWED (agents on people's RPCs), ROLE_REQUIRED, API_KEY_NOT_ALLOWED,
 * API_KEY_SCOPE, API_KEY_PROJECT (a key used on another project) and API_KEY_NO_ROLE (its
 * creator left the project).
 */
import type { Message } from "@bufbuild/protobuf";
import { permissionDenied } from "../../../mesh/errors.js";
import type { Authorizer, Principal, PublicMethod } from "../pipeline/types.js";
import type { MembershipSource } from "./memberships.js";
import { type Level, POLICY, type Rule } from "./policy.js";
import {
  forwardedRole,
  type GatewayPrincipal,
  gatewayView,
  isAgentic,
  isPlatformAdmin,
} from "./principal.js";
import { projectOf, stringAt } from "./request-fields.js";
import { atLeast, type RoleName } from "./roles.js";
import { inScope } from "./scopes.js";

export interface AuthorizerDeps {
  /** Looks up roles the forwarded principal left out (truncated principals). */
  memberships: Pick<MembershipSource, "roleIn">;
  /** The table; tests may pass their own. */
  policy?: ReadonlyMap<string, Rule>;
}

const REQUIRED: Partial<Record<Level, string>> = {
  viewer: "VIEWER",
  viewer_or_agent: "VIEWER or AGENT",
  maintainer: "MAINTAINER",
  owner: "OWNER",
  owner_or_self: "OWNER",
  agent: "AGENT",
};

export class GatewayAuthorizer implements Authorizer {
  private readonly policy: ReadonlyMap<string, Rule>;

  constructor(private readonly deps: AuthorizerDeps) {
    this.policy = deps.policy ?? POLICY;
  }

  async authorize(principal: Principal, route: PublicMethod, request: Message | undefined): Promise<void> {
    const rule = this.policy.get(route.path);
    const name = route.method.name;
    if (!rule) throw permissionDenied(`${name} is not open through the gateway`, "NOT_IN_POLICY");
    const p = gatewayView(principal);
    if (p.type === "api_key") checkKey(p, rule, route);
    switch (rule.level) {
      case "any":
        return;
      case "user":
        if (p.type !== "user") throw permissionDenied(`${name} requires a signed-in user`, "USER_REQUIRED");
        return;
      case "admin":
        if (!isPlatformAdmin(p))
          throw permissionDenied(`${name} requires a platform admin`, "ADMIN_REQUIRED");
        return;
      default:
        break;
    }
    const project = projectOf(route.method.input, request, rule.projectField);
    if (p.type === "api_key" && project !== undefined && project !== p.apiKey?.projectId) {
      throw permissionDenied("this API key belongs to another project", "API_KEY_PROJECT", {
        project_id: project,
      });
    }
    if (rule.level === "agent") {
      if (!isAgentic(p))
        throw permissionDenied(`${name} is an agent call; people cannot make it`, "AGENT_ONLY");
    } else {
      if (isAgentic(p) && rule.level !== "viewer_or_agent") {
        throw permissionDenied(`agents may only make agent calls, not ${name}`, "AGENTS_NOT_ALLOWED");
      }
      if (isPlatformAdmin(p)) return;
    }
    // No project in the request: the service checks the resource's project (see policy.ts).
    if (project === undefined) return;
    const role = await this.roleIn(p, project);
    if (rule.level === "owner_or_self" && role !== undefined && rule.selfField !== undefined && request) {
      if (stringAt(route.method.input, request, rule.selfField) === p.id) return;
    }
    if (satisfies(rule.level, role)) return;
    if (p.type === "api_key" && role === undefined) {
      throw permissionDenied(
        "this API key has no role in its project: its creator is no longer a member",
        "API_KEY_NO_ROLE",
      );
    }
    const required = REQUIRED[rule.level] ?? rule.level;
    throw permissionDenied(`${name} requires ${required} in project ${project}`, "ROLE_REQUIRED", {
      required,
      project_id: project,
    });
  }

  /**
   * The role in a project: from the forwarded principal, or — when its list was cut — from
   * the project service, added to the principal so the service receiving the call sees it.
   */
  private async roleIn(
    p: Partial<GatewayPrincipal> & Principal,
    projectId: string,
  ): Promise<RoleName | undefined> {
    const forwarded = forwardedRole(p, projectId);
    if (forwarded !== undefined || p.type === "api_key" || !p.projectRolesTruncated) return forwarded;
    const m = await this.deps.memberships.roleIn(projectId, p.id);
    if (m?.role !== undefined) p.projectRoles = { ...(p.projectRoles ?? {}), [projectId]: m.role };
    return m?.role;
  }
}

function checkKey(p: Partial<GatewayPrincipal> & Principal, rule: Rule, route: PublicMethod): void {
  if (rule.noApiKeys) {
    throw permissionDenied(`${route.method.name} cannot be called with an API key`, "API_KEY_NOT_ALLOWED");
  }
  if (!inScope(p.apiKey?.scopes ?? [], route.path)) {
    throw permissionDenied(`this API key's scopes do not include ${route.path.slice(1)}`, "API_KEY_SCOPE");
  }
}

function satisfies(level: Level, role: RoleName | undefined): boolean {
  switch (level) {
    case "viewer":
      return atLeast(role, "viewer");
    case "viewer_or_agent":
      return role === "agent" || atLeast(role, "viewer");
    case "maintainer":
      return atLeast(role, "maintainer");
    case "owner":
    case "owner_or_self":
      return role === "owner";
    case "agent":
      return role === "agent";
    default:
      return false;
  }
}
