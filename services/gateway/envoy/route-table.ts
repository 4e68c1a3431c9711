/**
 * How much traffic a route may take and how long a call may last; one token bucket per class.
 * - `read`: cheap, idempotent queries — generous, retried on UNAVAILABLE.
 * - `write`: commands that change state — tighter, never retried once sent.
 * - `agent`: the agent fleet's long-lived streams and heartbeats — no route timeout.
 */
export type RouteClass = "read" | "write" | "agent";

/** One deployable behind the front door: every public service of its proto package goes to it. */
export interface Upstream {
  /** Proto package, `codex.<name>.v1`. */
  readonly package: string;
  /** Envoy cluster name — and, as everywhere in our manifests, the Kubernetes Service name. */
  readonly cluster: string;
  /** gRPC port of the Service; {@link DEFAULT_GRPC_PORT} when absent. */
  readonly port?: number;
  /** Class of the package's services unless {@link Upstream.serviceClasses} says otherwise. */
  readonly routeClass: RouteClass;
  /** Per-service exceptions, keyed by the service's short name (`ApiKeyService`). */
  readonly serviceClasses?: Readonly<Record<string, RouteClass>>;
}

export const DEFAULT_GRPC_PORT = 50051;

/**
 * The route table: which deployable serves which public API. Keyed by package, not by service,
 * because one deployable serves a whole package and the service list itself comes from the protos
 * (a service is public when one of its methods has a `google.api.http` annotation). The generator
 * refuses a public service whose package is missing here, so nothing reaches the internet without
 * an owner and a rate-limit class.
 */
export const ROUTE_TABLE: readonly Upstream[] = [
  { package: "codex.project.v1", cluster: "project", routeClass: "write" },
  { package: "codex.workitem.v1", cluster: "workitem", routeClass: "write" },
  { package: "codex.scheduler.v1", cluster: "scheduler", routeClass: "write" },
  { package: "codex.agentmanager.v1", cluster: "agentmanager", routeClass: "agent" },
  { package: "codex.notification.v1", cluster: "notification", routeClass: "write" },
  { package: "codex.audit.v1", cluster: "audit", routeClass: "read" },
  {
    package: "codex.gateway.v1",
    cluster: "gateway",
    routeClass: "write",
    serviceClasses: { IdentityService: "read" },
  },
];

/**
 * Where gRPC health and reflection sent to the front door are answered. They need no token (generic
 * tools such as grpcurl probe them first); the gateway deployable serves reflection for the whole
 * public API.
 */
export const MAINTENANCE_CLUSTER = "gateway";
