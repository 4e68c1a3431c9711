/**
 * TEST ONLY — never imported by production code (a test checks it). Stand-ins for the
 * authentication, authorization and rate limits the auth engineer is writing, so the gateway's
 * own tests can exercise the pipeline: bearer tokens `user:<id>[:<projectId>=<role>,…]` become
 * user principals; the authorizer refuses chosen principals and records what it was shown; the
 * rate limiter gives chosen clients a small bucket that does not refill.
 */
import type { Message } from "@bufbuild/protobuf";
import { permissionDenied, unauthenticated } from "../../../mesh/errors.js";
import type {
  Authenticator,
  Authorizer,
  Credentials,
  GatewaySecurity,
  Principal,
  PublicMethod,
  RateLimitDecision,
  RateLimiter,
  RouteClass,
} from "../pipeline/types.js";

const TOKEN = /^Bearer user:([A-Za-z0-9_.-]+)(?::(.*))?$/;

export class TestAuthenticator implements Authenticator {
  async authenticate(creds: Credentials): Promise<Principal> {
    const m = TOKEN.exec(creds.authorization ?? "");
    if (!m) throw unauthenticated("missing or invalid bearer token");
    const projectRoles: Record<string, string> = {};
    for (const pair of (m[2] ?? "").split(",").filter(Boolean)) {
      const [project, role] = pair.split("=");
      if (project && role) projectRoles[project] = role;
    }
    return { type: "user", id: m[1]!, projectRoles };
  }
}

export class TestAuthorizer implements Authorizer {
  /** Principal ids refused with PERMISSION_DENIED. */
  readonly denied = new Set<string>();
  /** Every call seen: route path and the decoded request handed to the authorizer. */
  readonly seen: { path: string; request: Message | undefined; principal: Principal }[] = [];
  /** Whether calls are recorded in `seen` (a long benchmark turns it off: it would only grow). */
  record = true;

  async authorize(principal: Principal, route: PublicMethod, request: Message | undefined): Promise<void> {
    if (this.record) this.seen.push({ path: route.path, request, principal });
    if (this.denied.has(principal.id)) {
      throw permissionDenied(`${principal.id} may not call ${route.method.name}`, "TEST_DENIED");
    }
  }
}

export class TestRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, number>();
  /** Per-client bucket sizes; clients not listed are not limited. */
  readonly limits = new Map<string, number>();

  async take(clientKey: string, _routeClass: RouteClass): Promise<RateLimitDecision> {
    const limit = this.limits.get(clientKey);
    if (limit === undefined)
      return { allowed: true, limit: 1_000_000, remaining: 1_000_000, retryAfterMs: 0 };
    const used = (this.buckets.get(clientKey) ?? 0) + 1;
    this.buckets.set(clientKey, used);
    const allowed = used <= limit;
    return { allowed, limit, remaining: Math.max(0, limit - used), retryAfterMs: allowed ? 0 : 30_000 };
  }
}

/** The three test parts together. */
export function testSecurity(): GatewaySecurity & {
  authorizer: TestAuthorizer;
  rateLimiter: TestRateLimiter;
} {
  return {
    authenticator: new TestAuthenticator(),
    authorizer: new TestAuthorizer(),
    rateLimiter: new TestRateLimiter(),
  };
}

/** `Authorization` value for a test user. */
export function bearer(id: string, roles: Record<string, string> = {}): string {
  const pairs = Object.entries(roles).map(([p, r]) => `${p}=${r}`);
  return `Bearer user:${id}${pairs.length > 0 ? `:${pairs.join(",")}` : ""}`;
}
