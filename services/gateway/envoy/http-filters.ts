import type { JsonObject } from "@bufbuild/protobuf";
import type { FrontDoorSettings, JwtSettings } from "./front-door.js";

/** `{"@type": ...}` for a typed_config: the type URL form Envoy (and our validator) resolve. */
export function typed(typeName: string, body: JsonObject = {}): JsonObject {
  return { "@type": `type.googleapis.com/${typeName}`, ...body };
}

export const LOCAL_RATELIMIT = "envoy.filters.http.local_ratelimit";
export const LOCAL_RATELIMIT_TYPE = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
export const JWKS_CLUSTER = "jwks";

/** gRPC paths any client may call without a token: generic tools probe them first. */
export const UNAUTHENTICATED_PREFIXES = [
  "/grpc.health.v1.Health/",
  "/grpc.reflection.v1.ServerReflection/",
  "/grpc.reflection.v1alpha.ServerReflection/",
];

/**
 * The HTTP filter chain, in the order that makes it correct:
 * 1. health_check answers the load balancer's plain-HTTP probe before anything can refuse it;
 * 2. jwt_authn sees the path the client sent (`/v1/...` or `/codex.<svc>.v1.<Service>/...`);
 * 3. grpc_json_transcoder turns REST into gRPC and clears the route cache, so the request is
 *    re-routed by its gRPC path;
 * 4. local_ratelimit therefore charges REST and gRPC calls to the same per-service bucket;
 * 5. router.
 */
export function httpFilters(settings: FrontDoorSettings, serviceNames: readonly string[]): JsonObject[] {
  return [
    {
      name: "envoy.filters.http.health_check",
      typed_config: typed("envoy.extensions.filters.http.health_check.v3.HealthCheck", {
        pass_through_mode: false,
        headers: [{ name: ":path", string_match: { exact: settings.healthPath } }],
      }),
    },
    {
      name: "envoy.filters.http.jwt_authn",
      typed_config: typed(
        "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
        jwtAuthn(settings.jwt),
      ),
    },
    {
      name: "envoy.filters.http.grpc_json_transcoder",
      typed_config: typed("envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder", {
        proto_descriptor: settings.protoDescriptorPath,
        services: [...serviceNames],
        // grpc-gateway's defaults: lowerCamel JSON names, zero values printed, enums by name.
        print_options: {
          add_whitespace: false,
          always_print_primitive_fields: true,
          always_print_enums_as_ints: false,
          preserve_proto_field_names: false,
        },
        // `{code, message, details}` bodies with the HTTP status mapped from the gRPC code.
        convert_grpc_status: true,
        request_validation_options: { reject_unknown_method: false, reject_unknown_query_parameters: true },
      }),
    },
    // Disabled here; each route enables it with its own bucket (typed_per_filter_config).
    {
      name: LOCAL_RATELIMIT,
      typed_config: typed(LOCAL_RATELIMIT_TYPE, { stat_prefix: "http_local_rate_limiter" }),
    },
    {
      name: "envoy.filters.http.router",
      // Internal timings and upstream names stay inside.
      typed_config: typed("envoy.extensions.filters.http.router.v3.Router", { suppress_envoy_headers: true }),
    },
  ];
}

/**
 * One provider, and rules that require it everywhere except health and reflection: deny by
 * default, so a new path is protected before anyone thinks of it. The verified token is
 * forwarded; its payload is kept in dynamic metadata for access logs.
 */
function jwtAuthn(jwt: JwtSettings): JsonObject {
  const provider: JsonObject = {
    issuer: jwt.issuer,
    audiences: [...jwt.audiences],
    forward: true,
    payload_in_metadata: "jwt_payload",
  };
  if (jwt.jwks.kind === "remote") {
    provider.remote_jwks = {
      http_uri: { uri: jwt.jwks.uri, cluster: JWKS_CLUSTER, timeout: "5s" },
      cache_duration: jwt.jwks.cacheDuration,
      // Fetch keys at start-up, not on the first request, and retry when the issuer is down.
      async_fetch: { fast_listener: false },
      retry_policy: { num_retries: 3, retry_back_off: { base_interval: "0.5s", max_interval: "5s" } },
    };
  } else {
    provider.local_jwks = { filename: jwt.jwks.filename };
  }
  return {
    providers: { [jwt.provider]: provider },
    rules: [
      ...UNAUTHENTICATED_PREFIXES.map((prefix) => ({ match: { prefix } })),
      { match: { prefix: "/" }, requires: { provider_name: jwt.provider } },
    ],
  };
}
