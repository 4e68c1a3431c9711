import type { JsonObject } from "@bufbuild/protobuf";
import type { ExposedService } from "./exposed-services.js";
import type { ClassPolicy, FrontDoorSettings } from "./front-door.js";
import {
  EXT_AUTHZ,
  EXT_AUTHZ_PER_ROUTE_TYPE,
  LOCAL_RATELIMIT,
  LOCAL_RATELIMIT_TYPE,
  typed,
  UNAUTHENTICATED_PREFIXES,
} from "./http-filters.js";
import type { RouteClass } from "./route-table.js";

/**
 * The route table Envoy matches on. Only gRPC routes exist: a REST call has been rewritten to its
 * gRPC path by the transcoder before routing (see http-filters.ts), so one route per service
 * serves both, and a path nobody declared gets a 404 instead of reaching a backend.
 * `grpc: {}` makes a route match only `application/grpc` requests, so plain HTTP cannot be
 * smuggled to a gRPC backend by spelling a gRPC path.
 *
 * Methods whose requests stream get a route of their own, ahead of their service's, so ext_authz
 * checks them without waiting for a body that ends only with the call.
 */
export function routeConfig(
  exposed: readonly ExposedService[],
  maintenanceCluster: string,
  settings: FrontDoorSettings,
): JsonObject {
  const routes: JsonObject[] = exposed.flatMap((e) => [
    ...e.service.streamingRequests.map((method) => {
      const path = `/${e.service.typeName}/${method}`;
      return grpcRoute(path.slice(1), { path }, e.cluster, e.routeClass, settings, {
        check_settings: { disable_request_body_buffering: true },
      });
    }),
    grpcRoute(e.service.typeName, { prefix: `/${e.service.typeName}/` }, e.cluster, e.routeClass, settings),
  ]);
  for (const prefix of UNAUTHENTICATED_PREFIXES) {
    const name = prefix.slice(1, -1);
    routes.push({
      ...grpcRoute(name, { prefix }, maintenanceCluster, "read", settings, { disabled: true }),
      // Elsewhere ext_authz sets the signed principal (replacing a client-sent one); these routes
      // skip ext_authz, so a client-sent one is dropped here. (A route's removals apply at the
      // router, after ext_authz, which is why they cannot be configured for every route.)
      request_headers_to_remove: [...settings.strippedRequestHeaders],
    });
  }
  return {
    name: "codex",
    virtual_hosts: [{ name: "codex", domains: ["*"], routes }],
  };
}

function grpcRoute(
  name: string,
  match: { prefix: string } | { path: string },
  cluster: string,
  routeClass: RouteClass,
  settings: FrontDoorSettings,
  authz?: JsonObject,
): JsonObject {
  const policy = settings.classes[routeClass];
  const perFilter: JsonObject = { [LOCAL_RATELIMIT]: rateLimit(routeClass, policy) };
  if (authz) perFilter[EXT_AUTHZ] = typed(EXT_AUTHZ_PER_ROUTE_TYPE, authz);
  return {
    name,
    match: { ...match, grpc: {} },
    route: {
      cluster,
      timeout: policy.timeout,
      // The client's grpc-timeout is honoured up to the class timeout ("0s": uncapped, for streams).
      max_stream_duration: { grpc_timeout_header_max: policy.timeout },
      retry_policy: { retry_on: policy.retryOn, num_retries: policy.numRetries },
    },
    typed_per_filter_config: perFilter,
  };
}

/**
 * A token bucket for this route (each route gets its own bucket of the class's size). Refusals are
 * RESOURCE_EXHAUSTED for gRPC clients (429 for REST) with draft-03 `x-ratelimit-*` headers, and the
 * limit can be switched to shadow mode at run time through the runtime keys.
 */
function rateLimit(routeClass: RouteClass, policy: ClassPolicy): JsonObject {
  const percent = (key: string): JsonObject => ({
    runtime_key: `local_rate_limit.${routeClass}.${key}`,
    default_value: { numerator: 100, denominator: "HUNDRED" },
  });
  return typed(LOCAL_RATELIMIT_TYPE, {
    stat_prefix: `${routeClass}_rate_limit`,
    token_bucket: {
      max_tokens: policy.bucket.maxTokens,
      tokens_per_fill: policy.bucket.tokensPerFill,
      fill_interval: policy.bucket.fillInterval,
    },
    filter_enabled: percent("enabled"),
    filter_enforced: percent("enforced"),
    rate_limited_as_resource_exhausted: true,
    enable_x_ratelimit_headers: "DRAFT_VERSION_03",
  });
}
