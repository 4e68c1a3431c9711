/**
 * Who may call what, as one table. Every handler asks {@link authorize} with its RPC name,
 * so this file (mirrored in docs/adr/0007-project-authorization.md) is the whole truth about
 * project authorization.
 *
 * Roles come from membership rows for USER and AGENT principals, from the gateway-signed
 * `projectRoles` claim for API keys (keys are not members). Platform admins (SERVICE
 * principals, and users the gateway marks as admins) act on any project.
 */
import type { Principal } from "../../../mesh/context.js";

export type Role = "OWNER" | "MAINTAINER" | "VIEWER" | "AGENT";

/**
 * Access levels, weakest to strongest for humans:
 * - `creator`: an authenticated USER (API keys are project-scoped, agents and services do
 *   not own projects);
 * - `listing`: any authenticated principal (results are filtered to its memberships);
 * - `read`: any role in the project, AGENT included;
 * - `maintain`: MAINTAINER or OWNER;
 * - `own`: OWNER only;
 * - `own_or_self`: OWNER, or the member acting on its own membership (leaving a project);
 * - `own_or_admin`: OWNER, or a platform admin (quotas);
 * - `internal`: SERVICE principals only (RPCs without an HTTP mapping).
 * Platform admins (see {@link isPlatformAdmin}) pass every project-scoped level.
 */
export type Access =
  | "creator"
  | "listing"
  | "read"
  | "maintain"
  | "own"
  | "own_or_self"
  | "own_or_admin"
  | "internal";

export const RPC_ACCESS = {
  CreateProject: "creator",
  GetProject: "read",
  ListProjects: "listing",
  UpdateProject: "maintain",
  ArchiveProject: "own",
  AddMember: "own",
  RemoveMember: "own_or_self",
  UpdateMemberRole: "own",
  ListMembers: "read",
  GetMemberRole: "internal",
  SubmitVision: "maintain",
  GetVision: "read",
  ListVisionVersions: "read",
  ProposeRequirements: "maintain",
  EditRequirements: "maintain",
  ApproveRequirements: "own",
  RejectRequirements: "own",
  GetRequirements: "read",
  ListRequirements: "read",
  GetBuildReadiness: "read",
  SetQuota: "own_or_admin",
  GetQuota: "read",
  ReserveRunSlot: "internal",
  ReleaseRunSlot: "internal",
} as const satisfies Record<string, Access>;

export type Rpc = keyof typeof RPC_ACCESS;

/**
 * The outcome of a check. `not_found` hides the project from non-members (a project they
 * cannot see and one that does not exist look the same); `denied` tells a member it lacks
 * the role, naming the role required.
 */
export type Decision =
  | { allow: true }
  | { allow: false; outcome: "not_found" }
  | { allow: false; outcome: "denied"; required: string };

const HUMAN_RANK: Record<Exclude<Role, "AGENT">, number> = { VIEWER: 1, MAINTAINER: 2, OWNER: 3 };

/** Key and value of `projectRoles` by which the gateway marks a human platform admin. */
export const ADMIN_MARKER = { key: "*", value: "admin" } as const;

/**
 * Whether a principal is a platform admin (sees and administers every project): a mesh
 * service, or a USER the gateway marked with `projectRoles["*"] = "admin"` (the gateway's
 * convention, services/gateway/auth/roles.ts). API keys and agents never are.
 */
export function isPlatformAdmin(p: Principal): boolean {
  if (p.type === "service") return true;
  return p.type === "user" && p.projectRoles?.[ADMIN_MARKER.key] === ADMIN_MARKER.value;
}

function atLeast(role: Role, min: Exclude<Role, "AGENT">): boolean {
  return role !== "AGENT" && HUMAN_RANK[role] >= HUMAN_RANK[min];
}

/**
 * Decides one call. `role` is the caller's role in the target project (undefined when it
 * is not a member); `self` is true when the call targets the caller's own membership.
 */
export function authorize(rpc: Rpc, principal: Principal, role: Role | undefined, self = false): Decision {
  const access: Access = RPC_ACCESS[rpc];
  const deny = (required: string): Decision => ({ allow: false, outcome: "denied", required });
  switch (access) {
    case "creator":
      return principal.type === "user" ? { allow: true } : deny("an authenticated user");
    case "listing":
      return { allow: true };
    case "internal":
      return principal.type === "service" ? { allow: true } : deny("a service principal");
    default:
      break;
  }
  if (isPlatformAdmin(principal)) return { allow: true };
  if (role === undefined) return { allow: false, outcome: "not_found" };
  switch (access) {
    case "read":
      return { allow: true };
    case "maintain":
      return atLeast(role, "MAINTAINER") ? { allow: true } : deny("MAINTAINER");
    case "own":
    case "own_or_admin":
      return role === "OWNER" ? { allow: true } : deny("OWNER");
    case "own_or_self":
      return role === "OWNER" || self ? { allow: true } : deny("OWNER");
  }
}

/** Roles a principal of the given member type may hold (member.proto, MemberRole). */
export function roleAllowedFor(principalType: "USER" | "AGENT", role: Role): boolean {
  return principalType === "AGENT" ? role === "AGENT" : role !== "AGENT";
}

/**
 * Parses a role as the gateway writes it into an API key's `projectRoles` claim
 * ("OWNER", "owner" or "MEMBER_ROLE_OWNER"); unknown names grant nothing.
 */
export function parseRoleName(raw: string | undefined): Role | undefined {
  if (raw === undefined) return undefined;
  const name = raw.toUpperCase().replace(/^MEMBER_ROLE_/, "");
  return name === "OWNER" || name === "MAINTAINER" || name === "VIEWER" || name === "AGENT"
    ? name
    : undefined;
}
