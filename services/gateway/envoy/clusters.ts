import type { JsonObject } from "@bufbuild/protobuf";
import type { JwksSource } from "./front-door.js";
import { JWKS_CLUSTER, typed } from "./http-filters.js";

/**
 * An upstream gRPC deployable. Envoy resolves the Kubernetes Service name (the same word as the
 * cluster, as in every manifest we write) and speaks HTTP/2 to it.
 *
 * - gRPC health checks use the service's own `grpc.health.v1` (SERVING only once it is ready),
 *   so a pod that is up but not ready gets no traffic.
 * - Outlier detection ejects a host after consecutive 5xx / gateway failures, for at most half
 *   of the hosts, so a bad pod is isolated without emptying the cluster.
 * - Circuit breakers cap connections, queued and concurrent requests, and retries, so one slow
 *   service cannot take every Envoy worker's capacity.
 * - HTTP/2 keepalive pings find dead connections before a request does.
 */
export function upstreamCluster(name: string, port: number, maxRequests: number): JsonObject {
  return {
    name,
    type: "STRICT_DNS",
    connect_timeout: "1s",
    lb_policy: "LEAST_REQUEST",
    dns_lookup_family: "V4_PREFERRED",
    load_assignment: endpoints(name, name, port),
    typed_extension_protocol_options: {
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        {
          explicit_http_config: {
            http2_protocol_options: { connection_keepalive: { interval: "30s", timeout: "5s" } },
          },
        },
      ),
    },
    health_checks: [
      {
        timeout: "1s",
        interval: "5s",
        unhealthy_threshold: 2,
        healthy_threshold: 1,
        grpc_health_check: {},
      },
    ],
    outlier_detection: {
      consecutive_5xx: 5,
      consecutive_gateway_failure: 3,
      interval: "10s",
      base_ejection_time: "30s",
      max_ejection_percent: 50,
    },
    circuit_breakers: {
      thresholds: [
        {
          priority: "DEFAULT",
          max_connections: 1024,
          max_pending_requests: 1024,
          max_requests: maxRequests,
          max_retries: 16,
        },
      ],
    },
  };
}

/**
 * The issuer's JWKS endpoint, over TLS with the certificate checked against the system CAs and
 * the host name: keys fetched without verification would let anyone on the path mint tokens.
 */
export function jwksCluster(jwks: JwksSource): JsonObject | undefined {
  if (jwks.kind !== "remote") return undefined;
  return {
    name: JWKS_CLUSTER,
    type: "LOGICAL_DNS",
    connect_timeout: "2s",
    dns_lookup_family: "V4_PREFERRED",
    load_assignment: endpoints(JWKS_CLUSTER, jwks.host, jwks.port),
    transport_socket: {
      name: "envoy.transport_sockets.tls",
      typed_config: typed("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", {
        sni: jwks.host,
        common_tls_context: {
          validation_context: {
            trusted_ca: { filename: "/etc/ssl/certs/ca-certificates.crt" },
            match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: jwks.host } }],
          },
        },
      }),
    },
  };
}

function endpoints(cluster: string, host: string, port: number): JsonObject {
  return {
    cluster_name: cluster,
    endpoints: [
      { lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] },
    ],
  };
}
