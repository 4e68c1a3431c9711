/**
 * Turns the credentials of a call into the principal the gateway forwards.
 *
 * - `Authorization: Bearer <JWT>` → a USER (or AGENT, when the token says so) with its
 *   memberships as `projectRoles`; platform admins also get `projectRoles["*"] = "admin"`.
 * - `x-api-key: cdx_…` (or `Authorization: Bearer cdx_…`, as agents registering do) → an
 *   API_KEY principal with exactly one project role: the key's, capped by its creator's.
 * - Nothing, both at once, another scheme, or anything invalid → UNAUTHENTICATED.
 *
 * Presenting two credentials is refused rather than resolved by precedence: which one wins
 * would be an implicit rule clients and proxies could get wrong.
 */
import { unauthenticated } from "../../../mesh/errors.js";
import type { Authenticator, Credentials } from "../pipeline/types.js";
import type { JwtVerifier } from "./jwt.js";
import type { MembershipSource } from "./memberships.js";
import { boundRoles, type GatewayPrincipal } from "./principal.js";
import { ADMIN_ROLE, ALL_PROJECTS } from "./roles.js";

/** Verifies API key secrets (apikeys/key-auth.ts). */
export interface ApiKeyAuthenticator {
  /** Throws UNAUTHENTICATED for unknown, malformed, revoked or expired keys. */
  authenticate(secret: string): Promise<GatewayPrincipal>;
}

/** The prefix every API key secret starts with (api_key.proto). */
export const API_KEY_PREFIX = "cdx_";

export interface AuthenticatorDeps {
  jwt: JwtVerifier;
  apiKeys: ApiKeyAuthenticator;
  memberships: MembershipSource;
}

export class GatewayAuthenticator implements Authenticator {
  constructor(private readonly deps: AuthenticatorDeps) {}

  async authenticate(creds: Credentials): Promise<GatewayPrincipal> {
    const apiKey = creds.apiKey?.trim() || undefined;
    const authorization = creds.authorization?.trim() || undefined;
    if (apiKey !== undefined && authorization !== undefined) {
      throw unauthenticated("present either a bearer token or an API key, not both");
    }
    if (apiKey !== undefined) return this.deps.apiKeys.authenticate(apiKey);
    if (authorization === undefined) {
      throw unauthenticated("credentials required: a bearer token (Authorization) or an API key (x-api-key)");
    }
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!match) throw unauthenticated("the Authorization header must be 'Bearer <token>'");
    const token = match[1] as string;
    if (token.startsWith(API_KEY_PREFIX)) return this.deps.apiKeys.authenticate(token);
    return this.fromJwt(token);
  }

  private async fromJwt(token: string): Promise<GatewayPrincipal> {
    const id = await this.deps.jwt.verify(token);
    const { roles, truncated } = await this.deps.memberships.rolesOf(id.subject);
    const all: Record<string, string> = { ...roles };
    if (id.platformAdmin) all[ALL_PROJECTS] = ADMIN_ROLE;
    const bounded = boundRoles(all, truncated);
    const principal: GatewayPrincipal = {
      type: id.type,
      id: id.subject,
      authMethod: "jwt",
      projectRoles: bounded.projectRoles,
      expiresAt: id.expiresAt,
    };
    if (bounded.truncated) principal.projectRolesTruncated = true;
    if (id.displayName !== undefined) principal.displayName = id.displayName;
    return principal;
  }
}
