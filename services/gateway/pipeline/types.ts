/**
 * The contracts between the gateway's front doors and its security parts. Both front doors (gRPC
 * proxy, REST bridge) call them in one order through the Pipeline: request id → authenticate →
 * rate limit → authorize → forward with the signed principal.
 *
 * Implementations live in services/gateway/auth, ratelimit and apikeys; service.ts plugs them in.
 */
import type { Message } from "@bufbuild/protobuf";
import type { ConfigSpec } from "../../../mesh/config.js";
import type { Principal } from "../../../mesh/context.js";
import type { Host } from "../../../mesh/service-host.js";
import type { GatewayConfigSpec } from "../config.js";
import type { PublicMethod, RouteClass } from "../routes/route-table.js";

export type { Principal, PublicMethod, RouteClass };

/**
 * What the caller presented. gRPC: `authorization` and `x-api-key` metadata. REST: the
 * `Authorization` and `X-Api-Key` headers. Both absent is possible: the authenticator decides.
 */
export interface Credentials {
  /** The raw Authorization value, e.g. `Bearer eyJ…`. */
  authorization?: string;
  /** The raw API key. */
  apiKey?: string;
}

/** Turns credentials into a principal. */
export interface Authenticator {
  /** Throws ServiceError UNAUTHENTICATED (mesh/errors `unauthenticated()`) when they are missing or bad. */
  authenticate(creds: Credentials): Promise<Principal>;
}

/** Decides whether a principal may call a route with a given request. */
export interface Authorizer {
  /**
   * Throws ServiceError PERMISSION_DENIED (mesh/errors `permissionDenied()`) to refuse.
   * `request` is the decoded request of unary and server-streaming calls (a copy: the original
   * bytes are what is forwarded); it is `undefined` for client and bidi streams, whose messages
   * arrive after the call is admitted and are checked by the upstream service.
   */
  authorize(principal: Principal, route: PublicMethod, request: Message | undefined): Promise<void>;
}

/** The outcome of taking one token from a client's bucket. */
export interface RateLimitDecision {
  allowed: boolean;
  /** Bucket size (→ `X-RateLimit-Limit`). */
  limit: number;
  /** Tokens left after this call (→ `X-RateLimit-Remaining`). */
  remaining: number;
  /** When refused: how long until a token is available (→ `Retry-After`, RetryInfo). */
  retryAfterMs: number;
}

/** Per-client, per-route-class limits. */
export interface RateLimiter {
  /** `clientKey` is `<principal.type>:<principal.id>`. Must not throw for over-limit: return `allowed: false`. */
  take(clientKey: string, routeClass: RouteClass): Promise<RateLimitDecision>;
}

/** The security parts the gateway needs, plugged in together. */
export interface GatewaySecurity {
  authenticator: Authenticator;
  authorizer: Authorizer;
  rateLimiter: RateLimiter;
  /**
   * Registers the gateway's own gRPC services (ApiKeyService, IdentityService) on host.server,
   * and any components they need (the gateway declares Redis and Postgres for them).
   */
  setup?(host: Host<GatewayConfigSpec & ConfigSpec>): Promise<void> | void;
}

/**
 * How production wiring obtains its security parts: services/gateway/auth/index.ts exports
 * `createGatewaySecurity` with this signature (see service.ts).
 */
export type GatewaySecurityFactory = (
  host: Host<GatewayConfigSpec & ConfigSpec>,
) => Promise<GatewaySecurity> | GatewaySecurity;
