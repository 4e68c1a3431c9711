import { readFileSync } from "node:fs";
import { join } from "node:path";
import { clone, create } from "@bufbuild/protobuf";
import type { FileDescriptorSet } from "@bufbuild/protobuf/wkt";
import { FileDescriptorProtoSchema, ServiceDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { FRONT_DOOR } from "./front-door.js";
import { generateEnvoyConfig, renderEnvoyYaml } from "./generate.js";
import type { PublicService } from "./proto-image.js";
import { buildProtoImage, decodeProtoImage, findPublicServices } from "./proto-image.js";
import { validateEnvoyConfig } from "./validate.js";

const REPO_ROOT = join(import.meta.dirname, "../../..");
/** Field number of the `google.api.http` extension of MethodOptions (google/api/annotations.proto). */
const HTTP_EXTENSION_NUMBER = 72295728;

/** The parts of the generated bootstrap these tests read. */
interface Generated {
  static_resources: {
    listeners: { filter_chains: { filters: { typed_config: Hcm }[] }[] }[];
    clusters: { name: string; load_assignment: { endpoints: { lb_endpoints: Endpoint[] }[] } }[];
  };
}
interface Endpoint {
  endpoint: { address: { socket_address: { address: string; port_value: number } } };
}
interface Hcm {
  route_config: { virtual_hosts: { routes: Route[] }[] };
  http_filters: { name: string; typed_config: Record<string, unknown> }[];
}
interface Route {
  match: { prefix: string; grpc?: object };
  route: { cluster: string; timeout: string };
}

function render(services: readonly PublicService[], settings = FRONT_DOOR): { yaml: string; doc: Generated } {
  const yaml = renderEnvoyYaml(generateEnvoyConfig({ services, settings }));
  return { yaml, doc: parse(yaml) as Generated };
}

function hcmOf(doc: Generated): Hcm {
  return doc.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
}

function filterConfig(doc: Generated, name: string): Record<string, unknown> {
  const filter = hcmOf(doc).http_filters.find((f) => f.name === name);
  if (filter === undefined) throw new Error(`no ${name} filter`);
  return filter.typed_config;
}

/**
 * Public services found the low-level way — a method whose options carry field 72295728 as an
 * unknown field — so the test does not reuse the code it checks.
 */
function publicServicesByWireScan(set: FileDescriptorSet): string[] {
  return set.file
    .filter((file) => file.package.startsWith("codex."))
    .flatMap((file) =>
      file.service
        .filter((svc) =>
          svc.method.some((m) => m.options?.$unknown?.some((u) => u.no === HTTP_EXTENSION_NUMBER)),
        )
        .map((svc) => `${file.package}.${svc.name}`),
    )
    .sort();
}

describe("generated Envoy config for this repository's protos", () => {
  let set: FileDescriptorSet;
  let services: PublicService[];
  let yaml: string;
  let doc: Generated;

  beforeAll(() => {
    set = decodeProtoImage(buildProtoImage(REPO_ROOT));
    services = findPublicServices(set);
    ({ yaml, doc } = render(services));
  });

  it("passes validation against Envoy's API protos", () => {
    expect(validateEnvoyConfig(yaml)).toEqual({ ok: true });
  });

  it("lists exactly the public services of the descriptor set in the transcoder", () => {
    const expected = publicServicesByWireScan(set);
    expect(expected.length).toBeGreaterThan(0);
    expect(services.map((s) => s.typeName)).toEqual(expected);
    const transcoder = filterConfig(doc, "envoy.filters.http.grpc_json_transcoder");
    expect(transcoder.services).toEqual(expected);
    expect(transcoder.convert_grpc_status).toBe(true);
    expect(transcoder.proto_descriptor).toBe(FRONT_DOOR.protoDescriptorPath);
  });

  it("routes each public service's gRPC prefix to a cluster that exists", () => {
    const routes = hcmOf(doc).route_config.virtual_hosts[0]!.routes;
    const clusters = new Set(doc.static_resources.clusters.map((c) => c.name));
    for (const name of publicServicesByWireScan(set)) {
      const route = routes.find((r) => r.match.prefix === `/${name}/`);
      expect(route, name).toBeDefined();
      expect(route?.match.grpc).toEqual({});
      expect(clusters.has(route?.route.cluster ?? ""), `${name} → ${route?.route.cluster}`).toBe(true);
    }
  });

  it("refuses a bad JWT everywhere but gRPC health and reflection, and lets a missing one reach ext_authz", () => {
    const jwt = filterConfig(doc, "envoy.filters.http.jwt_authn") as {
      rules: { match: { prefix: string }; requires?: unknown }[];
    };
    const open = jwt.rules.filter((r) => r.requires === undefined).map((r) => r.match.prefix);
    expect(open.every((p) => /^\/grpc\.(health|reflection)\./.test(p))).toBe(true);
    expect(jwt.rules.at(-1)).toEqual({
      match: { prefix: "/" },
      requires: { requires_any: { requirements: [{ provider_name: "codex" }, { allow_missing: {} }] } },
    });
  });

  it("orders the HTTP filters so REST is authenticated, transcoded, rate limited, then checked by ext_authz", () => {
    expect(hcmOf(doc).http_filters.map((f) => f.name)).toEqual([
      "envoy.filters.http.health_check",
      "envoy.filters.http.jwt_authn",
      "envoy.filters.http.grpc_json_transcoder",
      "envoy.filters.http.local_ratelimit",
      "envoy.filters.http.ext_authz",
      "envoy.filters.http.router",
    ]);
  });

  it("asks the gateway's ext_authz about every call, failing closed, with unary bodies and never stream bodies", () => {
    const authz = filterConfig(doc, "envoy.filters.http.ext_authz") as {
      grpc_service: { envoy_grpc: { cluster_name: string } };
      failure_mode_allow: boolean;
      with_request_body: { pack_as_bytes: boolean; allow_partial_message: boolean };
    };
    expect(authz.grpc_service.envoy_grpc.cluster_name).toBe("gateway");
    expect(doc.static_resources.clusters.map((c) => c.name)).toContain("gateway");
    expect(authz.failure_mode_allow).toBe(false);
    expect((hcmOf(doc) as unknown as Record<string, unknown>).preserve_external_request_id).toBe(true);
    expect(authz.with_request_body).toMatchObject({ pack_as_bytes: true, allow_partial_message: false });
    const routes = hcmOf(doc).route_config.virtual_hosts[0]!.routes as unknown as {
      match: { prefix?: string; path?: string };
      typed_per_filter_config: Record<string, { disabled?: boolean; check_settings?: unknown }>;
      request_headers_to_remove?: string[];
    }[];
    const authzOf = (r: (typeof routes)[number]) => r.typed_per_filter_config["envoy.filters.http.ext_authz"];
    // The agents' Connect stream: its own route, ahead of its service's, without body buffering.
    const connect = "/codex.agentmanager.v1.AgentManagerService/Connect";
    const connectAt = routes.findIndex((r) => r.match.path === connect);
    expect(connectAt).toBeGreaterThanOrEqual(0);
    expect(connectAt).toBeLessThan(
      routes.findIndex((r) => r.match.prefix === "/codex.agentmanager.v1.AgentManagerService/"),
    );
    expect(authzOf(routes[connectAt]!)).toMatchObject({
      check_settings: { disable_request_body_buffering: true },
    });
    // Every route but health and reflection is checked; those drop a client-sent principal.
    for (const r of routes) {
      const maintenance = /^\/grpc\.(health|reflection)\./.test(r.match.prefix ?? "");
      expect(authzOf(r)?.disabled === true, JSON.stringify(r.match)).toBe(maintenance);
      if (maintenance) expect(r.request_headers_to_remove).toEqual(["x-codex-principal"]);
      else expect(r.request_headers_to_remove).toBeUndefined();
    }
  });

  it("leaves out services with no google.api.http method", () => {
    // Clone a real annotated method into a new package, once with its options and once without.
    const annotated = set.file
      .flatMap((f) => f.service.flatMap((svc) => svc.method))
      .find((m) => m.options?.$unknown);
    const base = set.file.find((f) => f.service.some((svc) => svc.method.includes(annotated!)))!;
    const file = clone(FileDescriptorProtoSchema, base);
    file.name = "codex/fixture/v1/fixture.proto";
    file.package = "codex.fixture.v1";
    file.messageType = [];
    file.enumType = [];
    const method = (withOptions: boolean) => ({
      ...annotated!,
      ...(withOptions ? {} : { options: undefined }),
    });
    file.service = [
      create(ServiceDescriptorProtoSchema, { name: "Internal", method: [method(false)] }),
      create(ServiceDescriptorProtoSchema, { name: "External", method: [method(true), method(false)] }),
    ];
    const names = findPublicServices({ ...set, file: [...set.file, file] }).map((s) => s.typeName);
    expect(names).toContain("codex.fixture.v1.External");
    expect(names).not.toContain("codex.fixture.v1.Internal");
  });

  it("is what deploy/envoy/envoy.yaml holds (else run: npx tsx scripts/envoy-generate.ts)", () => {
    expect(readFileSync(join(REPO_ROOT, "deploy/envoy/envoy.yaml"), "utf8")).toBe(yaml);
  });
});

describe("generateEnvoyConfig with a fixed route table", () => {
  const fixture: PublicService[] = [
    {
      typeName: "codex.fixture.v1.ThingService",
      package: "codex.fixture.v1",
      name: "ThingService",
      streamingRequests: [],
    },
    {
      typeName: "codex.fixture.v1.StreamService",
      package: "codex.fixture.v1",
      name: "StreamService",
      streamingRequests: ["Upload"],
    },
  ];
  const routeTable = [
    {
      package: "codex.fixture.v1",
      cluster: "fixture",
      port: 6000,
      routeClass: "write" as const,
      serviceClasses: { StreamService: "agent" as const },
    },
  ];

  const fixtureSettings = { ...FRONT_DOOR, authz: { ...FRONT_DOOR.authz, cluster: "fixture" } };

  it("gives each deployable one cluster on its port and each service its class's timeout", () => {
    const config = generateEnvoyConfig({
      services: fixture,
      routeTable,
      maintenanceCluster: "fixture",
      settings: fixtureSettings,
    });
    const yaml = renderEnvoyYaml(config);
    expect(validateEnvoyConfig(yaml)).toEqual({ ok: true });
    const doc = parse(yaml) as Generated;
    expect(doc.static_resources.clusters.map((c) => c.name)).toEqual(["fixture", "jwks"]);
    const endpoint = doc.static_resources.clusters[0]!.load_assignment.endpoints[0]!.lb_endpoints[0]!;
    expect(endpoint.endpoint.address.socket_address).toEqual({ address: "fixture", port_value: 6000 });
    const routes = hcmOf(doc).route_config.virtual_hosts[0]!.routes;
    const timeoutOf = (prefix: string) => routes.find((r) => r.match.prefix === prefix)?.route.timeout;
    expect(timeoutOf("/codex.fixture.v1.ThingService/")).toBe(FRONT_DOOR.classes.write.timeout);
    expect(timeoutOf("/codex.fixture.v1.StreamService/")).toBe("0s");
    const upload = routes.find(
      (r) => (r.match as { path?: string }).path === "/codex.fixture.v1.StreamService/Upload",
    );
    expect(upload?.route.timeout).toBe("0s");
  });

  it("refuses a public service whose package has no upstream, naming the file to edit", () => {
    expect(() =>
      generateEnvoyConfig({ services: fixture, routeTable: [], maintenanceCluster: "fixture" }),
    ).toThrow(/codex\.fixture\.v1\.ThingService.*route-table\.ts/);
  });

  it("supports a local JWKS file: valid, and no JWKS cluster", () => {
    const settings = {
      ...fixtureSettings,
      jwt: { ...FRONT_DOOR.jwt, jwks: { kind: "local" as const, filename: "/etc/envoy/jwks.json" } },
    };
    const config = generateEnvoyConfig({
      services: fixture,
      routeTable,
      maintenanceCluster: "fixture",
      settings,
    });
    const yaml = renderEnvoyYaml(config);
    expect(validateEnvoyConfig(yaml)).toEqual({ ok: true });
    expect((parse(yaml) as Generated).static_resources.clusters.map((c) => c.name)).toEqual(["fixture"]);
  });
});
