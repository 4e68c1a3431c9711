/**
 * The gateway: one front door for gRPC (GATEWAY_GRPC_PORT) and REST (GATEWAY_HTTP_PORT) to every
 * public service, both going through one pipeline (request id → authenticate → rate limit →
 * authorize → forward with the signed principal). host.server (PORT) serves the gateway's own
 * services (ApiKeyService, IdentityService), which the front doors reach like any other upstream,
 * and Envoy's ext_authz `Authorization/Check`, the same pipeline for the production Envoy front
 * door (authz/ext-authz.ts).
 *
 * Shutdown: when the host starts draining, both front doors report not ready at once (/readyz 503,
 * gRPC health NOT_SERVING); the host then stops its own server, the REST and gRPC listeners (each
 * letting calls finish until the grace deadline), and finally the upstream channels.
 */

import { Authorization } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { ConfigSpec } from "../../mesh/config.js";
import type { Migration } from "../../mesh/postgres/migrations.js";
import type { ServiceDefinition } from "../../mesh/service-host.js";
import { authConfigSpec, createGatewaySecurity, gatewayMigrations } from "./auth/index.js";
import { extAuthzService } from "./authz/ext-authz.js";
import { type GatewayConfigSpec, gatewayConfigSpec, upstreamAddresses } from "./config.js";
import { GrpcProxy } from "./grpc-proxy/proxy-server.js";
import { Pipeline } from "./pipeline/pipeline.js";
import type { GatewaySecurity, GatewaySecurityFactory } from "./pipeline/types.js";
import { RestBridge } from "./rest/rest-bridge.js";
import { RestServer } from "./rest/rest-server.js";
import { RestRouter } from "./rest/router.js";
import { jsonRegistry } from "./rest/transcode.js";
import { buildRouteTable, type GATEWAY_SERVICES } from "./routes/route-table.js";
import { UpstreamSessions } from "./routes/upstream-sessions.js";

/** What the gateway is built from. */
export interface GatewayOptions {
  /** Authentication, rate limits and authorization: the parts themselves, or a factory given the host. */
  readonly security: GatewaySecurity | GatewaySecurityFactory;
  /** Services behind the gateway (default: every service of the product). */
  readonly services?: typeof GATEWAY_SERVICES;
  /** Settings of the security parts, parsed with the gateway's own at start-up. */
  readonly config?: ConfigSpec;
  /** The gateway schema's migrations (API keys…); default none. */
  readonly migrations?: Migration[];
  /** Connect to NATS and relay the gateway's outbox (needs migrations with the outbox table). */
  readonly nats?: boolean;
}

/** The front doors' bound ports, known once the service has started. */
export interface FrontDoors {
  readonly grpcPort: number;
  readonly httpPort: number;
}

export type GatewayDefinition = ServiceDefinition<GatewayConfigSpec> & { readonly frontDoors: FrontDoors };

/** Builds the gateway's service definition; start it once (its `frontDoors` describe that start). */
export function gatewayService(opts: GatewayOptions): GatewayDefinition {
  let proxy: GrpcProxy | undefined;
  let rest: RestServer | undefined;
  const frontDoors: FrontDoors = {
    get grpcPort() {
      if (!proxy) throw new Error("gateway not started");
      return proxy.port;
    },
    get httpPort() {
      if (!rest) throw new Error("gateway not started");
      return rest.port;
    },
  };
  return {
    name: "gateway",
    config: { ...gatewayConfigSpec, ...opts.config } as GatewayConfigSpec,
    // Postgres (API keys) and Redis (rate limits) belong to the security parts plugged in.
    migrations: opts.migrations ?? [],
    redis: true,
    ...(opts.nats ? { nats: true } : {}),
    frontDoors,
    async setup(host) {
      const { config, logger } = host;
      if (config.GATEWAY_GRPC_PORT !== 0 && config.GATEWAY_GRPC_PORT === config.PORT) {
        throw new Error(
          `PORT and GATEWAY_GRPC_PORT are both ${config.PORT}: PORT serves the gateway's own services ` +
            "and GATEWAY_GRPC_PORT the gRPC front door; give them different ports",
        );
      }
      const security = typeof opts.security === "function" ? await opts.security(host) : opts.security;
      await security.setup?.(host);
      const routes = buildRouteTable(opts.services);
      const pipeline = new Pipeline({
        security,
        meshSecret: config.MESH_SECRET,
        principalTtlMs: config.GATEWAY_PRINCIPAL_TTL_MS,
        observe: (path, code, s) => host.metrics.rpcServer.observe(path, code, s),
      });
      const sessions = new UpstreamSessions(upstreamAddresses(config, () => `127.0.0.1:${host.server.port}`));
      const context = {
        pipeline,
        upstreams: sessions,
        logger,
        maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
      };
      proxy = new GrpcProxy({ routes, context, port: config.GATEWAY_GRPC_PORT });
      const registry = jsonRegistry(routes.services);
      // For the production Envoy front door (ext_authz): the same pipeline, answered to Envoy.
      host.server.add(
        Authorization,
        extAuthzService({ routes, pipeline, maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES, registry }),
      );
      const bridge = new RestBridge({
        router: new RestRouter(routes),
        pipeline,
        sessions,
        maxMessageBytes: config.GRPC_MAX_MESSAGE_BYTES,
        registry,
        logger,
        maxBodyBytes: config.GATEWAY_MAX_BODY_BYTES,
        unaryTimeoutMs: config.GATEWAY_REST_TIMEOUT_MS,
      });
      rest = new RestServer({
        bridge,
        port: config.GATEWAY_HTTP_PORT,
        logger,
        ready: () => host.lifecycle.state === "RUNNING",
      });
      const grpcDoor = proxy;
      host.lifecycle.onStateChange((state) => {
        if (state === "DRAINING") grpcDoor.health.setStatus("", "NOT_SERVING");
      });
      // Added in dependency order; the host stops components in reverse.
      host.addComponent("upstreams", {
        stop: async () => {
          sessions.close();
        },
      });
      host.addComponent("grpc-front-door", grpcDoor);
      host.addComponent("rest-front-door", rest);
    },
  };
}

// ──────────────────────────────────────────────────────────────────────────────────────────────
// AUTH PLUG-IN POINT. Production security is services/gateway/auth/index.ts: the security parts
// (createGatewaySecurity, see pipeline/types.ts), their settings and the gateway schema's
// migrations. Tests build the gateway with gatewayService() and their own stand-ins instead.
// ──────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The gateway as deployed: real authentication, API keys (its Postgres schema, events through
 * its outbox and NATS) and rate limits (Redis). Async so that wiring may later need I/O.
 */
export async function productionGateway(): Promise<GatewayDefinition> {
  return gatewayService({
    security: createGatewaySecurity,
    config: authConfigSpec,
    migrations: gatewayMigrations,
    nats: true,
  });
}
