/**
 * The principal the gateway builds and forwards (signed, see mesh/principal-token.ts).
 *
 * Beyond mesh's `Principal` it carries what the gateway's own services (WhoAmI) and the
 * authorizer need: how the caller authenticated, when the credential expires, and for API
 * keys their project, role and scopes. Those extra members travel in the signed JSON like
 * the others; services that do not know them ignore them.
 *
 * `projectRoles` is bounded: the principal token must stay well under the 16 KiB a service
 * accepts, so at most {@link MAX_FORWARDED_ROLES} memberships are forwarded and
 * `projectRolesTruncated` says when some were left out. The authorizer always adds the role in
 * the request's own project, so a service checking that project finds it; a service checking
 * another project of a truncated principal asks ProjectService.GetMemberRole.
 */
import type { Principal } from "../../../mesh/context.js";
import { ADMIN_ROLE, ALL_PROJECTS, parseRole, type RoleName } from "./roles.js";

export const MAX_FORWARDED_ROLES = 150;

export type AuthMethod = "jwt" | "api_key" | "service";

/** What an API-key principal says about its key. */
export interface KeyGrant {
  projectId: string;
  /** The key's own role (the effective one, capped by its creator, is in projectRoles). */
  role: RoleName;
  /** Method scopes; empty means every method the role allows. */
  scopes: string[];
  /** Per-key limit in requests per minute; 0 uses the gateway's class limits. */
  requestsPerMinute: number;
}

export interface GatewayPrincipal extends Principal {
  authMethod: AuthMethod;
  /** When the credential stops working, epoch ms. */
  expiresAt?: number;
  projectRolesTruncated?: boolean;
  apiKey?: KeyGrant;
}

/** Reads the gateway's extra members from a principal (a forwarded one included). */
export function gatewayView(p: Principal): Partial<GatewayPrincipal> & Principal {
  return p as Partial<GatewayPrincipal> & Principal;
}

/** Whether the principal is a platform administrator (`projectRoles["*"] = "admin"`). */
export function isPlatformAdmin(p: Principal): boolean {
  return p.type === "user" && p.projectRoles?.[ALL_PROJECTS] === ADMIN_ROLE;
}

/** The principal's role in one project, as forwarded. */
export function forwardedRole(p: Principal, projectId: string): RoleName | undefined {
  return parseRole(p.projectRoles?.[projectId]);
}

/**
 * Agentic principals do agent work only: agent JWTs, and API keys whose role is AGENT.
 * Everything else is a person or a program acting like one.
 */
export function isAgentic(p: Principal): boolean {
  if (p.type === "agent") return true;
  return p.type === "api_key" && gatewayView(p).apiKey?.role === "agent";
}

/**
 * Bounds a role map for forwarding: the admin marker first, then projects in id order (so the
 * same memberships always give the same token), at most {@link MAX_FORWARDED_ROLES}.
 */
export function boundRoles(
  roles: Readonly<Record<string, string>>,
  truncatedAlready = false,
): { projectRoles: Record<string, string>; truncated: boolean } {
  const out: Record<string, string> = {};
  const admin = roles[ALL_PROJECTS];
  if (admin !== undefined) out[ALL_PROJECTS] = admin;
  const ids = Object.keys(roles)
    .filter((id) => id !== ALL_PROJECTS)
    .sort();
  for (const id of ids.slice(0, MAX_FORWARDED_ROLES)) out[id] = roles[id] as string;
  return { projectRoles: out, truncated: truncatedAlready || ids.length > MAX_FORWARDED_ROLES };
}
