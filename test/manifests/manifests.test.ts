/**
 * The Kubernetes and Istio manifests in istio/, checked offline: they build with
 * `kubectl kustomize`, every document passes its schema (unknown fields included) and what
 * istiod's webhook would refuse, and they keep the invariants operators rely on. Who may call
 * whom is checked against the code: the `<NAME>_ADDR` settings each service declares and the
 * gRPC services in proto/.
 */
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { SERVICE_PORTS } from "../../scripts/start.js";
import { durationMs, istioProblems } from "./istio-rules.js";
import { protoServices } from "./protos.js";
import { kustomize, lintYaml, type Manifest, repoRoot, yamlFiles } from "./render.js";
import { bytes, GRPC, routeFor } from "./routing.js";
import { label, schemaErrors, unknownFieldErrors } from "./schemas.js";

// biome-ignore lint/suspicious/noExplicitAny: rendered YAML
type Obj = any;

const SERVICES = Object.keys(SERVICE_PORTS);
const fqdn = (svc: string) => `${svc}.codex.svc.cluster.local`;
const principal = (svc: string) => `cluster.local/ns/codex/sa/${svc}`;
/** The only callers from outside the namespace a policy may name. */
const INGRESS = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
const PROMETHEUS = "cluster.local/ns/istio-system/sa/prometheus";
const METRICS_PORT = 9464;
const addrVar = (svc: string) => `${svc.toUpperCase().replaceAll("-", "_")}_ADDR`;

/** Folders holding one file per service, and the kind in them. */
const PER_SERVICE: Record<string, string> = {
  deployments: "Deployment",
  services: "Service",
  "service-accounts": "ServiceAccount",
  "config-maps": "ConfigMap",
  "pod-disruption-budgets": "PodDisruptionBudget",
  "horizontal-pod-autoscalers": "HorizontalPodAutoscaler",
  "mesh/destination-rules": "DestinationRule",
  "mesh/virtual-services": "VirtualService",
  "mesh/authorization-policies": "AuthorizationPolicy",
};
/** Files in those folders that belong to no single service. */
const SHARED = [
  "config-maps/codex-mesh",
  "mesh/virtual-services/codex-ingress",
  "mesh/authorization-policies/allow-nothing",
];

const protos = protoServices();
/** The proto services a deployable serves: package codex.<name without dashes>.v1. */
const ownServices = (svc: string) =>
  [...protos.keys()].filter((s) => s.startsWith(`codex.${svc.replaceAll("-", "")}.v1.`));

/** Rendered once per directory, on first use: a build failure fails the tests that need it. */
const rendered = new Map<string, Manifest[]>();
const build = (dir: string) => {
  if (!rendered.has(dir)) rendered.set(dir, kustomize(dir));
  return rendered.get(dir)!;
};
const base = () => build("istio/base");
const canary = () => build("istio/overlays/canary");
const find = (docs: Manifest[], kind: string, name: string): Obj => {
  const m = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!m) throw new Error(`no ${kind} ${name}`);
  return m;
};
const container = (d: Obj) => d.spec.template.spec.containers[0];
const env = (d: Obj, name: string) => container(d).env.find((e: Obj) => e.name === name);

describe("files", () => {
  it("kubectl kustomize builds the base and the canary overlay", () => {
    expect(base().length).toBeGreaterThan(60);
    expect(canary().length).toBe(base().length + 1);
  });

  it("lint clean: no syntax errors, duplicate keys, tabs or trailing spaces", () => {
    expect(yamlFiles("istio").flatMap(lintYaml)).toEqual([]);
  });

  it("one file per service per kind, named after the service, holding that object", () => {
    for (const [folder, kind] of Object.entries(PER_SERVICE)) {
      const files = yamlFiles(`istio/base/${folder}`).map((f) => basename(f, ".yaml"));
      const own = files.filter((f) => !SHARED.includes(`${folder}/${f}`));
      expect(own.sort(), folder).toEqual([...SERVICES].sort());
      for (const f of files) {
        const doc = parse(readFileSync(join(repoRoot, "istio/base", folder, `${f}.yaml`), "utf8"));
        expect([doc.kind, doc.metadata.name], `${folder}/${f}.yaml`).toEqual([kind, f]);
      }
    }
  });
});

describe.each([
  { dir: "istio/base", docs: base },
  { dir: "istio/overlays/canary", docs: canary },
])("$dir", ({ docs }) => {
  it("every document passes its Kubernetes or Istio schema", () => {
    expect(docs().length).toBeGreaterThan(60);
    expect(docs().flatMap(schemaErrors)).toEqual([]);
  });

  it("no document has a field its schema does not know (the API server would drop it)", () => {
    expect(unknownFieldErrors(docs())).toEqual([]);
  }, 60_000);

  it("nothing istiod's validation would refuse (durations, retryOn, weights, paths)", () => {
    expect(istioProblems(docs())).toEqual([]);
  });

  it("everything lives in the codex namespace", () => {
    const namespaced = docs().filter((d) => d.kind !== "Namespace");
    expect(namespaced.filter((d) => d.metadata.namespace !== "codex").map(label)).toEqual([]);
    expect(find(docs(), "Namespace", "codex").metadata.labels["istio-injection"]).toBe("enabled");
  });

  it("Deployments: gRPC probes, non-root read-only containers, sized for ≤150 MB, graceful stop", () => {
    const shared = find(docs(), "ConfigMap", "codex-mesh").data;
    const [graceMs, forceMs] = [Number(shared.GRACE_MS), Number(shared.FORCE_MS)];
    expect(forceMs).toBeGreaterThan(graceMs);
    for (const d of docs().filter((m) => m.kind === "Deployment")) {
      const app = d.metadata.labels!.app!;
      const port = SERVICE_PORTS[app]!;
      const pod = d.spec.template.spec;
      const c = container(d);
      const at = label(d);
      expect(c.ports.find((p: Obj) => p.name === "grpc")?.containerPort, at).toBe(port);
      expect(c.ports.find((p: Obj) => p.name === "http-metrics")?.containerPort, at).toBe(METRICS_PORT);
      for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"])
        expect(c[probe]?.grpc, `${at} ${probe}`).toEqual({ port });
      expect(pod.securityContext.runAsNonRoot, at).toBe(true);
      expect(c.securityContext, at).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
      const { requests, limits } = c.resources;
      expect(bytes(requests.memory), `${at} memory request covers 150 MB`).toBeGreaterThanOrEqual(150e6);
      expect(bytes(limits.memory), at).toBeGreaterThan(bytes(requests.memory));
      expect(bytes(limits.memory), at).toBeLessThanOrEqual(256 * 2 ** 20);
      expect(limits.cpu, at).toBeDefined();
      const sleepS = c.lifecycle.preStop.sleep.seconds;
      expect(sleepS, at).toBeGreaterThan(0);
      expect(
        pod.terminationGracePeriodSeconds * 1000,
        `${at} grace covers preStop + FORCE_MS`,
      ).toBeGreaterThan(sleepS * 1000 + forceMs);
      expect(env(d, "PORT")?.value, at).toBe(String(port));
      expect(env(d, "METRICS_PORT")?.value, at).toBe(String(METRICS_PORT));
      for (const name of ["MESH_SECRET", "REDIS_URL", "DATABASE_URL"])
        expect(env(d, name)?.valueFrom?.secretKeyRef, `${at} ${name}`).toBeDefined();
      for (const name of ["NATS_URL", "GRACE_MS", "FORCE_MS"])
        expect(env(d, name)?.valueFrom?.configMapKeyRef?.name, `${at} ${name}`).toBe("codex-mesh");
    }
  });

  it("every VirtualService route's weights sum to 100 over subsets its DestinationRule defines", () => {
    for (const vs of docs().filter((m) => m.kind === "VirtualService")) {
      for (const r of vs.spec.http) {
        expect(
          r.route.reduce((n: number, d: Obj) => n + d.weight, 0),
          label(vs),
        ).toBe(100);
        for (const { destination } of r.route) {
          const dr = docs().find((m) => m.kind === "DestinationRule" && m.spec.host === destination.host);
          expect(
            dr?.spec.subsets.map((s: Obj) => s.name),
            `${label(vs)} → ${destination.host}`,
          ).toContain(destination.subset);
        }
      }
    }
  });
});

describe("one name everywhere", () => {
  it.each(SERVICES)(
    "%s: Deployment, ServiceAccount, Service, container, image and app label agree",
    (svc) => {
      const d = find(base(), "Deployment", svc);
      const labels = { app: svc, version: "v1" };
      expect(d.metadata.labels).toMatchObject(labels);
      expect(d.spec.selector.matchLabels).toEqual(labels);
      expect(d.spec.template.metadata.labels).toEqual(labels);
      expect(d.spec.template.spec.serviceAccountName).toBe(svc);
      expect(container(d).name).toBe(svc);
      expect(container(d).image).toMatch(new RegExp(`/${svc}:[\\w.-]+$`));
      expect(find(base(), "ServiceAccount", svc).metadata.name).toBe(svc);
      expect(find(base(), "Service", svc).spec.selector).toEqual({ app: svc });
      for (const kind of ["PodDisruptionBudget", "DestinationRule", "VirtualService", "AuthorizationPolicy"])
        expect(find(base(), kind, svc).metadata.labels.app, kind).toBe(svc);
      expect(find(base(), "HorizontalPodAutoscaler", svc).spec.scaleTargetRef).toMatchObject({
        kind: "Deployment",
        name: svc,
      });
      expect(find(base(), "PodDisruptionBudget", svc).spec.selector.matchLabels).toEqual({ app: svc });
    },
  );

  it.each(SERVICES)("%s: Service ports are named for Istio's protocol detection", (svc) => {
    const ports = find(base(), "Service", svc).spec.ports;
    expect(ports.find((p: Obj) => p.name === "grpc")).toMatchObject({
      port: SERVICE_PORTS[svc],
      appProtocol: "grpc",
    });
    expect(ports.find((p: Obj) => p.name === "http-metrics")).toMatchObject({
      port: METRICS_PORT,
      appProtocol: "http",
    });
    for (const p of ports) expect(p.name).toMatch(/^(grpc|http)(-[a-z]+)?$/);
  });
});

describe("addresses and secrets follow the code", () => {
  const configOf = (svc: string) => readFileSync(join(repoRoot, "services", svc, "config.ts"), "utf8");

  it.each(SERVICES)("%s: gets exactly the <NAME>_ADDR variables its config.ts declares", (svc) => {
    const declared = [...configOf(svc).matchAll(/^\s+([A-Z_]+_ADDR):/gm)].map((m) => m[1]);
    const given = container(find(base(), "Deployment", svc))
      .env.map((e: Obj) => e.name)
      .filter((n: string) => n.endsWith("_ADDR"));
    expect(given.sort()).toEqual(declared.sort());
    const shared = find(base(), "ConfigMap", "codex-mesh").data;
    for (const name of SERVICES) expect(shared[addrVar(name)]).toBe(`${fqdn(name)}:${SERVICE_PORTS[name]}`);
  });

  it.each(SERVICES)("%s: every required secret setting comes from a Secret", (svc) => {
    // `str({ secret: true, … })` without a default: the service refuses to start without it.
    const required = [...configOf(svc).matchAll(/^\s+([A-Z_]+): str\(\{ secret: true(?![^}]*default)/gm)].map(
      (m) => m[1]!,
    );
    const d = find(base(), "Deployment", svc);
    for (const name of ["MESH_SECRET", ...required])
      expect(env(d, name)?.valueFrom?.secretKeyRef, name).toBeDefined();
  });
});

describe("mesh", () => {
  it("mutual TLS is STRICT namespace-wide and every DestinationRule uses mesh certificates", () => {
    const pa = base().filter((m) => m.kind === "PeerAuthentication");
    expect(pa.map((p) => [p.spec.selector, p.spec.mtls.mode])).toEqual([[undefined, "STRICT"]]);
    for (const dr of base().filter((m) => m.kind === "DestinationRule"))
      expect(dr.spec.trafficPolicy.tls.mode).toBe("ISTIO_MUTUAL");
  });

  it.each(SERVICES)(
    "%s: DestinationRule with circuit breaking, outlier detection and v1/v2 subsets",
    (svc) => {
      const dr = find(base(), "DestinationRule", svc);
      expect(dr.spec.host).toBe(fqdn(svc));
      expect(dr.spec.trafficPolicy.connectionPool.http.http2MaxRequests).toBeGreaterThan(0);
      expect(dr.spec.trafficPolicy.outlierDetection).toMatchObject({
        consecutiveGatewayErrors: expect.any(Number),
      });
      expect(dr.spec.trafficPolicy.outlierDetection.maxEjectionPercent).toBeLessThanOrEqual(50);
      expect(dr.spec.subsets).toEqual([
        { name: "v1", labels: { version: "v1" } },
        { name: "v2", labels: { version: "v2" } },
      ]);
    },
  );

  it.each(SERVICES)("%s: VirtualService retries every call; unary calls time out, streams do not", (svc) => {
    const vs = find(base(), "VirtualService", svc);
    expect(vs.spec.hosts).toEqual([fqdn(svc)]);
    for (const service of ownServices(svc)) {
      for (const m of protos.get(service)!) {
        const r = routeFor(vs, `/${service}/${m.name}`, GRPC);
        const at = `${service}/${m.name}`;
        expect(r, at).toBeDefined();
        expect(r.retries.attempts, at).toBeGreaterThan(0);
        expect(
          r.route.map((d: Obj) => [d.destination.host, d.destination.subset, d.weight]),
          at,
        ).toEqual([
          [fqdn(svc), "v1", 100],
          [fqdn(svc), "v2", 0],
        ]);
        if (m.streaming) {
          // A route timeout would cut a healthy stream; Istio refuses 0s, so none may be set.
          expect([r.timeout, r.retries.perTryTimeout], `${at} is a stream`).toEqual([undefined, undefined]);
        } else {
          expect(durationMs(r.timeout), at).toBeGreaterThan(0);
          expect(durationMs(r.retries.perTryTimeout), at).toBeLessThanOrEqual(durationMs(r.timeout)!);
          expect(r.retries.retryOn.split(","), at).toEqual(
            expect.arrayContaining(["unavailable", "cancelled"]),
          );
          // Our services answer RESOURCE_EXHAUSTED only for quotas and limits: retrying adds load, never success.
          expect(r.retries.retryOn, at).not.toContain("resource-exhausted");
        }
      }
    }
  });
});

describe("authorization", () => {
  const policies = () => base().filter((m) => m.kind === "AuthorizationPolicy");
  const known = () => [
    ...base()
      .filter((m) => m.kind === "ServiceAccount")
      .map((s) => principal(s.metadata.name)),
    INGRESS,
    PROMETHEUS,
  ];

  it("allow-nothing denies by default; every other policy ALLOWs for one service", () => {
    expect(find(base(), "AuthorizationPolicy", "allow-nothing").spec).toEqual({});
    for (const p of policies().filter((m) => m.metadata.name !== "allow-nothing")) {
      expect(p.spec.action, label(p)).toBe("ALLOW");
      expect(p.spec.selector.matchLabels, label(p)).toEqual({ app: p.metadata.name });
    }
  });

  it.each(SERVICES)(
    "%s: names only known ServiceAccounts and real gRPC methods of its own services",
    (svc) => {
      for (const rule of find(base(), "AuthorizationPolicy", svc).spec.rules) {
        const principals = rule.from.flatMap((f: Obj) => f.source.principals);
        expect(known(), svc).toEqual(expect.arrayContaining(principals));
        const ops = rule.to.map((t: Obj) => t.operation);
        if (principals.includes(PROMETHEUS)) {
          expect(principals).toEqual([PROMETHEUS]);
          expect(ops).toEqual([{ ports: [String(METRICS_PORT)], methods: ["GET"], paths: ["/metrics"] }]);
          continue;
        }
        if (principals.includes(INGRESS)) {
          // Only the gateway faces the ingress, on its front-door ports.
          expect([svc, principals]).toEqual(["gateway", [INGRESS]]);
          const ports = find(base(), "Service", "gateway").spec.ports.map((p: Obj) => String(p.port));
          expect(ports).toEqual(expect.arrayContaining(ops.flatMap((o: Obj) => o.ports)));
          continue;
        }
        for (const path of ops.flatMap((o: Obj) => o.paths)) {
          const [, service, method] = /^\/([\w.]+)\/(\w+|\*)$/.exec(path) ?? [];
          expect(ownServices(svc), path).toContain(service);
          if (method !== "*")
            expect(
              protos.get(service!)!.map((m) => m.name),
              path,
            ).toContain(method);
        }
      }
    },
  );

  it("a service calls another exactly when it has its address and that one's policy allows it", () => {
    const allowed = new Set<string>();
    for (const p of policies())
      for (const rule of p.spec.rules ?? [])
        for (const from of rule.from)
          for (const who of from.source.principals) allowed.add(`${who} → ${p.metadata.name}`);
    const needed = new Set<string>();
    for (const caller of SERVICES)
      for (const callee of SERVICES)
        if (callee !== caller && env(find(base(), "Deployment", caller), addrVar(callee)))
          needed.add(`${principal(caller)} → ${callee}`);
    const mesh = [...allowed].filter((a) => a.startsWith("cluster.local/ns/codex/"));
    expect(mesh.sort()).toEqual([...needed].sort());
  });
});

describe("ingress", () => {
  it("terminates TLS on 443 and sends gRPC and REST to the gateway's front doors", () => {
    const gw = find(base(), "Gateway", "codex-ingress");
    expect(gw.spec.servers.find((s: Obj) => s.port.number === 443)).toMatchObject({
      port: { protocol: "HTTPS" },
      tls: { mode: "SIMPLE" },
    });
    const vs = find(base(), "VirtualService", "codex-ingress");
    expect(vs.spec.gateways).toEqual(["codex-ingress"]);
    const ports = find(base(), "Service", "gateway").spec.ports;
    const portOf = (name: string) => ports.find((p: Obj) => p.name === name).port;
    for (const [service, methods] of protos)
      for (const m of methods) {
        const grpc = routeFor(vs, `/${service}/${m.name}`, GRPC);
        expect(grpc.route[0].destination.port.number).toBe(portOf("grpc-edge"));
        expect(
          grpc.timeout,
          "gRPC through the ingress: clients set deadlines; streams must not be cut",
        ).toBeUndefined();
        for (const template of m.httpPaths) {
          const rest = routeFor(vs, template.replace(/\{[^}]+\}/g, "x1"));
          expect(rest.route[0].destination.port.number, template).toBe(portOf("http-rest"));
          if (m.streaming) expect(rest.timeout, `${template} streams`).toBeUndefined();
          else expect(rest.timeout, template).toBeDefined();
        }
      }
  });
});

describe("canary overlay", () => {
  it("sends 90 % of scheduler calls to v1 and 10 % to v2; every other service stays on v1", () => {
    for (const vs of canary().filter((m) => m.kind === "VirtualService"))
      for (const r of vs.spec.http) {
        const weights = Object.fromEntries(r.route.map((d: Obj) => [d.destination.subset, d.weight]));
        expect(weights, label(vs)).toEqual(
          vs.metadata.name === "scheduler" ? { v1: 90, v2: 10 } : { v1: 100, v2: 0 },
        );
      }
  });

  it("runs scheduler-v2: the v1 pod with only its version label and image changed", () => {
    const [v1, v2] = [
      find(canary(), "Deployment", "scheduler"),
      find(canary(), "Deployment", "scheduler-v2"),
    ];
    const labels = { app: "scheduler", version: "v2" };
    expect(v2.spec.selector.matchLabels).toEqual(labels);
    expect(v2.spec.template.metadata.labels).toEqual(labels);
    expect(container(v2).image).not.toBe(container(v1).image);
    const withoutImage = (d: Obj) => ({
      ...d.spec.template.spec,
      containers: [{ ...container(d), image: "" }],
    });
    expect(withoutImage(v2)).toEqual(withoutImage(v1));
    expect(v2.spec.template.metadata.annotations).toEqual(v1.spec.template.metadata.annotations);
  });

  it("changes nothing else of the base", () => {
    const key = (m: Manifest) => `${m.kind}/${m.metadata.name}`;
    const changed = canary().filter((m) => {
      const b = base().find((x) => key(x) === key(m));
      return !b || JSON.stringify(b) !== JSON.stringify(m);
    });
    expect(changed.map(key).sort()).toEqual(["Deployment/scheduler-v2", "VirtualService/scheduler"]);
  });
});
