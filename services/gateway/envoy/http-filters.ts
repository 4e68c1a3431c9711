import type { JsonObject } from "@bufbuild/protobuf";
import type { FrontDoorSettings, JwtSettings } from "./front-door.js";

/** `{"@type": ...}` for a typed_config: the type URL form Envoy (and our validator) resolve. */
export function typed(typeName: string, body: JsonObject = {}): JsonObject {
  return { "@type": `type.googleapis.com/${typeName}`, ...body };
}

export const LOCAL_RATELIMIT = "envoy.filters.http.local_ratelimit";
export const LOCAL_RATELIMIT_TYPE = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
export const JWKS_CLUSTER = "jwks";
export const EXT_AUTHZ = "envoy.filters.http.ext_authz";
export const EXT_AUTHZ_PER_ROUTE_TYPE = "envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";

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
 * 5. ext_authz asks the gateway deployable (services/gateway/authz) about every request with its
 *    gRPC path and gRPC-framed body, whatever door it came through: API keys, roles, per-client
 *    limits and the signed principal; only then
 * 6. router.
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
      name: EXT_AUTHZ,
      typed_config: typed("envoy.extensions.filters.http.ext_authz.v3.ExtAuthz", extAuthz(settings)),
    },
    {
      name: "envoy.filters.http.router",
      // Internal timings and upstream names stay inside.
      typed_config: typed("envoy.extensions.filters.http.router.v3.Router", { suppress_envoy_headers: true }),
    },
  ];
}

/**
 * Fails closed (no answer is a refusal: 503), with the body of unary and server-streaming calls
 * (routes of streaming requests turn buffering off) as bytes, as the gateway's authorizer needs.
 */
function extAuthz(settings: FrontDoorSettings): JsonObject {
  return {
    grpc_service: { envoy_grpc: { cluster_name: settings.authz.cluster }, timeout: settings.authz.timeout },
    transport_api_version: "V3",
    failure_mode_allow: false,
    status_on_error: { code: "ServiceUnavailable" },
    with_request_body: {
      max_request_bytes: settings.authz.maxRequestBytes,
      allow_partial_message: false,
      pack_as_bytes: true,
    },
  };
}

/**
 * One provider; a token, when present, must verify, everywhere but health and reflection: a
 * forged or expired JWT is refused at the edge. A missing one is let through to ext_authz, which
 * accepts an API key instead or refuses (deny by default stays: ext_authz runs on every route).
 * The verified token is forwarded to ext_authz; its payload is kept in dynamic metadata for
 * access logs.
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
      {
        match: { prefix: "/" },
        requires: {
          requires_any: { requirements: [{ provider_name: jwt.provider }, { allow_missing: {} }] },
        },
      },
    ],
  };
}
