/**
 * What the gateway's wiring (service.ts) takes from its security parts: the factories, the
 * gateway's own services (ApiKeyService, IdentityService) and its schema's migrations.
 *
 * `createGatewaySecurity(host)` is the production entry point: it reads the auth settings
 * (config.ts), asks the project service (PROJECT_ADDR) for roles, keeps API keys in the
 * gateway's Postgres schema and rate-limit state in Redis, and registers the gateway's own
 * services on host.server in `setup`.
 */
import type { Redis } from "ioredis";
import type pg from "pg";
import type { Registry } from "prom-client";
import { ApiKeyService } from "../../../gen/codex/gateway/v1/api_key_service_pb.js";
import { IdentityService } from "../../../gen/codex/gateway/v1/identity_service_pb.js";
import { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import type { Logger } from "../../../mesh/logging.js";
import { subjectsFor } from "../../../mesh/nats/subjects.js";
import { migrate } from "../../../mesh/postgres/migrations.js";
import { apiKeyService } from "../apikeys/api-key-service.js";
import { purgeExpiredRequestIds } from "../apikeys/idempotency.js";
import { identityService } from "../apikeys/identity-service.js";
import { ApiKeyAuth } from "../apikeys/key-auth.js";
import { apiKeyMigrations } from "../apikeys/migrations.js";
import type { Authorizer, GatewaySecurity, GatewaySecurityFactory, RateLimiter } from "../pipeline/types.js";
import { parseRate, RedisRateLimiter, unlimited } from "../ratelimit/limiter.js";
import { type ApiKeyAuthenticator, GatewayAuthenticator } from "./authenticator.js";
import { GatewayAuthorizer } from "./authorizer.js";
import { cacheEventWatcher } from "./cache-events.js";
import { type AuthSettings, authSettingsOf, type RateLimitSettings } from "./config.js";
import { JwtVerifier } from "./jwt.js";
import { KeyStore, parseConfiguredKeys } from "./jwt-keys.js";
import { type MembershipSource, projectMemberships } from "./memberships.js";

export { authConfigSpec } from "./config.js";
export { apiKeyService, identityService };

/** The gateway schema's migrations (API keys, request ids, outbox). */
export const gatewayMigrations = apiKeyMigrations;

export interface AuthenticatorFactoryDeps {
  settings: AuthSettings;
  memberships: MembershipSource;
  apiKeys: ApiKeyAuthenticator;
  logger?: Pick<Logger, "warn">;
}

/**
 * Builds the authenticator; loads the JWKS file once (a missing file fails start-up).
 * @throws Error naming the variables when no JWT key source is configured.
 */
export async function createAuthenticator(deps: AuthenticatorFactoryDeps): Promise<GatewayAuthenticator> {
  const s = deps.settings;
  const keys = new KeyStore({
    configured: s.JWT_PUBLIC_KEYS ? parseConfiguredKeys(s.JWT_PUBLIC_KEYS) : [],
    ...(s.JWT_JWKS_FILE ? { file: s.JWT_JWKS_FILE } : {}),
    reloadIntervalMs: s.JWT_JWKS_RELOAD_INTERVAL,
    warn: (msg, err) => deps.logger?.warn({ err }, msg),
  });
  await keys.start();
  if (keys.size === 0 && !s.JWT_HS256_SECRET) {
    throw new Error("no JWT verification key: set JWT_PUBLIC_KEYS, JWT_JWKS_FILE or JWT_HS256_SECRET");
  }
  const jwt = new JwtVerifier({
    issuer: s.JWT_ISSUER,
    audience: s.JWT_AUDIENCE,
    algorithms: s.JWT_ALGORITHMS,
    keys,
    ...(s.JWT_HS256_SECRET ? { hs256Secret: s.JWT_HS256_SECRET } : {}),
    clockToleranceMs: s.JWT_CLOCK_TOLERANCE,
    maxLifetimeMs: s.JWT_MAX_LIFETIME,
    adminClaim: s.JWT_ADMIN_CLAIM,
    adminValue: s.JWT_ADMIN_VALUE,
    principalTypeClaim: s.JWT_PRINCIPAL_TYPE_CLAIM,
  });
  return new GatewayAuthenticator({ jwt, apiKeys: deps.apiKeys, memberships: deps.memberships });
}

/** Builds the authorizer over the policy table (policy.ts). */
export function createAuthorizer(deps: { memberships: Pick<MembershipSource, "roleIn"> }): Authorizer {
  return new GatewayAuthorizer(deps);
}

export interface RateLimiterFactoryDeps {
  settings: RateLimitSettings;
  redis: Redis;
  /** Per-client requests-per-minute (API keys that set one). */
  perMinuteOverride?: (clientKey: string) => number | undefined;
  logger?: Pick<Logger, "warn">;
  registry?: Registry;
}

/** Builds the Redis GCRA limiter (or an unlimited one when RATE_LIMIT_DISABLED). */
export function createRateLimiter(deps: RateLimiterFactoryDeps): RateLimiter {
  const s = deps.settings;
  if (s.RATE_LIMIT_DISABLED) return unlimited;
  return new RedisRateLimiter({
    redis: deps.redis,
    limits: {
      read: parseRate("RATE_LIMIT_READ", s.RATE_LIMIT_READ),
      write: parseRate("RATE_LIMIT_WRITE", s.RATE_LIMIT_WRITE),
      agent: parseRate("RATE_LIMIT_AGENT", s.RATE_LIMIT_AGENT),
      stream: parseRate("RATE_LIMIT_STREAM", s.RATE_LIMIT_STREAM),
    },
    keyPrefix: s.RATE_LIMIT_KEY_PREFIX,
    failMode: s.RATE_LIMIT_FAIL_MODE,
    ...(deps.perMinuteOverride ? { perMinuteOverride: deps.perMinuteOverride } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.registry ? { registry: deps.registry } : {}),
  });
}

/**
 * The production security parts for the gateway's host. Needs PROJECT_ADDR, the gateway's
 * Postgres schema migrated with {@link gatewayMigrations}, and Redis.
 */
export const createGatewaySecurity: GatewaySecurityFactory = async (host): Promise<GatewaySecurity> => {
  const settings = authSettingsOf(host.config);
  const projectAddr = host.config.PROJECT_ADDR;
  if (!projectAddr || projectAddr.length === 0) {
    throw new Error("PROJECT_ADDR is required: the gateway reads project roles from the project service");
  }
  const pool = host.pool as pg.Pool | undefined;
  if (!pool)
    throw new Error("the gateway needs its Postgres schema (migrations: gatewayMigrations) for API keys");
  const projects = host.client(ProjectService, [...projectAddr]);
  const memberships = projectMemberships({ client: projects, ttlMs: settings.AUTH_MEMBERSHIP_CACHE_TTL });
  const keyAuth = new ApiKeyAuth({
    db: pool,
    memberships,
    cacheTtlMs: settings.AUTH_API_KEY_CACHE_TTL,
    onTouchError: (err) => host.logger.warn({ err }, "could not record API key use"),
  });
  const authenticator = await createAuthenticator({
    settings,
    memberships,
    apiKeys: keyAuth,
    logger: host.logger,
  });
  const rateLimiter = createRateLimiter({
    settings,
    redis: host.redis,
    perMinuteOverride: (k) => keyAuth.perMinuteOf(k),
    logger: host.logger,
    registry: host.metrics.registry,
  });
  return {
    authenticator,
    authorizer: createAuthorizer({ memberships }),
    rateLimiter,
    setup(h) {
      // Idempotent with the host's own run: a no-op when the gateway's definition already lists
      // gatewayMigrations, and what creates the tables when it does not (yet).
      h.addComponent("api-key-schema", {
        start: async () => {
          await migrate(pool, { schema: h.schema, migrations: gatewayMigrations });
        },
        stop: async () => {},
      });
      // Expired request ids are ignored on read; sweeping only keeps the table small.
      let sweeper: NodeJS.Timeout | undefined;
      h.addComponent("request-id-sweeper", {
        start: async () => {
          sweeper = setInterval(() => {
            purgeExpiredRequestIds(pool, new Date()).catch((err: unknown) =>
              h.logger.warn({ err }, "request id sweep failed"),
            );
          }, 10 * 60_000);
          sweeper.unref();
        },
        stop: async () => clearInterval(sweeper),
      });
      const nats = (h as { nats?: typeof h.nats }).nats;
      if (nats) {
        h.addComponent(
          "auth-cache-events",
          cacheEventWatcher(
            nats.nc,
            nats.subjects.prefix,
            {
              forgetPrincipal: (id) => memberships.forget(id),
              forgetKey: (lookup) => keyAuth.forget(lookup),
            },
            h.logger,
          ),
        );
      } else {
        h.logger.warn("gateway without NATS: events stay in the outbox and caches expire only by TTL");
      }
      h.server.add(
        ApiKeyService,
        apiKeyService({
          pool,
          subjects: subjectsFor(h.config.NATS_SUBJECT_PREFIX),
          memberships,
          forgetKey: (lookup) => keyAuth.forget(lookup),
        }),
      );
      h.server.add(IdentityService, identityService({ db: pool, memberships, projects, logger: h.logger }));
    },
  };
};
