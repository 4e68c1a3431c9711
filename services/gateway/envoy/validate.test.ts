import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { loadEnvoyRegistry } from "./envoy-registry.js";
import { validateEnvoyConfig } from "./validate.js";

const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

/** A small but complete bootstrap; each test breaks one thing in a fresh copy. */
function bootstrap() {
  return {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } },
    static_resources: {
      listeners: [
        {
          name: "ingress",
          address: { socket_address: { address: "0.0.0.0", port_value: 8080 } },
          filter_chains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": HCM,
                    stat_prefix: "ingress",
                    codec_type: "AUTO",
                    route_config: {
                      virtual_hosts: [
                        {
                          name: "all",
                          domains: ["*"],
                          routes: [{ match: { prefix: "/" }, route: { cluster: "project", timeout: "15s" } }],
                        },
                      ],
                    },
                    http_filters: [{ name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } }],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [{ name: "project", type: "STRICT_DNS", connect_timeout: "1s", lb_policy: "ROUND_ROBIN" }],
    },
  };
}

function errorsOf(config: unknown): readonly string[] {
  const result = validateEnvoyConfig(stringify(config));
  return result.ok ? [] : result.errors;
}

function hcmOf(config: ReturnType<typeof bootstrap>) {
  return config.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
}

describe("validateEnvoyConfig", () => {
  it("accepts a well-formed bootstrap, as YAML and as JSON", () => {
    expect(validateEnvoyConfig(stringify(bootstrap()))).toEqual({ ok: true });
    expect(validateEnvoyConfig(JSON.stringify(bootstrap()))).toEqual({ ok: true });
  });

  it("refuses an unknown field and names it with its path", () => {
    const config = bootstrap();
    Object.assign(config.static_resources.clusters[0]!, { conect_timeout: "1s" });
    expect(errorsOf(config)).toEqual([
      expect.stringMatching(
        /^static_resources\.clusters\[0\]\.conect_timeout: .*key "conect_timeout" is unknown/,
      ),
    ]);
  });

  it("refuses an unknown field inside a typed_config, decoded as the type its @type names", () => {
    const config = bootstrap();
    Object.assign(hcmOf(config).http_filters[0]!.typed_config, { suppress_headers: true });
    const [error] = errorsOf(config);
    expect(error).toContain("typed_config.http_filters[0].typed_config.suppress_headers:");
    expect(error).toContain("envoy.extensions.filters.http.router.v3.Router");
  });

  it("refuses an enum value Envoy does not define", () => {
    const config = bootstrap();
    config.static_resources.clusters[0]!.lb_policy = "FASTEST";
    expect(errorsOf(config)).toEqual([
      expect.stringMatching(
        /clusters\[0\]\.lb_policy: .*enum envoy\.config\.cluster\.v3\.Cluster\.LbPolicy.*"FASTEST"/,
      ),
    ]);
  });

  it("refuses a malformed duration", () => {
    const config = bootstrap();
    config.static_resources.clusters[0]!.connect_timeout = "1 second";
    expect(errorsOf(config)).toEqual([
      expect.stringMatching(/clusters\[0\]\.connect_timeout: .*google\.protobuf\.Duration.*"1 second"/),
    ]);
  });

  it("refuses an @type that names no registered Envoy type", () => {
    const config = bootstrap();
    hcmOf(config).http_filters[0]!.typed_config["@type"] =
      "type.googleapis.com/envoy.extensions.filters.http.nope.v3.Nope";
    expect(errorsOf(config)).toEqual([
      expect.stringMatching(
        /http_filters\[0\]\.typed_config: .*envoy\.extensions\.filters\.http\.nope\.v3\.Nope is not in the type registry/,
      ),
    ]);
  });

  it("reports every problem at once, not only the first", () => {
    const config = bootstrap();
    config.static_resources.clusters[0]!.lb_policy = "FASTEST";
    config.static_resources.clusters[0]!.connect_timeout = "soon";
    hcmOf(config).codec_type = "HTTP9";
    expect(errorsOf(config)).toHaveLength(3);
  });

  it("applies Envoy's PGV rules once the document decodes", () => {
    const config = bootstrap();
    const hcm: Record<string, unknown> = hcmOf(config);
    hcm.stat_prefix = "";
    delete hcm.route_config;
    config.static_resources.clusters[0]!.name = "";
    expect(errorsOf(config)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /typed_config\.route_specifier: one of \[rds, route_config, scoped_routes\] is required/,
        ),
        expect.stringMatching(/typed_config\.stat_prefix: must be at least 1 character/),
        expect.stringMatching(/clusters\[0\]\.name: must be at least 1 character/),
      ]),
    );
  });

  it("refuses YAML with duplicate keys and documents that are not a mapping", () => {
    expect(validateEnvoyConfig("admin: {}\nadmin: {}\n")).toMatchObject({
      ok: false,
      errors: [expect.stringContaining("unique")],
    });
    expect(validateEnvoyConfig("- 1\n")).toMatchObject({
      ok: false,
      errors: [expect.stringContaining("mapping")],
    });
  });
});

describe("loadEnvoyRegistry", () => {
  it("registers every extension type our front door uses", () => {
    const { registry } = loadEnvoyRegistry();
    const used = [
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
      "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
      "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
      "envoy.extensions.filters.http.health_check.v3.HealthCheck",
      "envoy.extensions.filters.http.router.v3.Router",
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
      "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
      "xds.type.v3.TypedStruct",
    ];
    expect(used.filter((name) => registry.getMessage(name) === undefined)).toEqual([]);
  });

  it("leaves out only files whose imports @grpc/grpc-js-xds does not ship (tracing, metrics)", () => {
    const { skipped } = loadEnvoyRegistry();
    for (const missing of skipped.values())
      expect(missing).toMatch(/^(opencensus|opentelemetry|io\/prometheus)\//);
  });
});
