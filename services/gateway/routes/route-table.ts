/**
 * The gateway's route table, built once at start-up from the protobuf-es descriptors in gen/.
 *
 * Why from descriptors: the `google.api.http` annotations are the contract of what is public.
 * Deriving the table from them (rather than listing paths by hand) means a new annotated RPC is
 * routable over gRPC and REST as soon as the code is regenerated, and an RPC without one can never
 * leak through the front door.
 */
import { type DescMethod, type DescService, getOption, hasOption } from "@bufbuild/protobuf";
import { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { AuditService } from "../../../gen/codex/audit/v1/audit_service_pb.js";
import { ApiKeyService } from "../../../gen/codex/gateway/v1/api_key_service_pb.js";
import { IdentityService } from "../../../gen/codex/gateway/v1/identity_service_pb.js";
import { NotificationService } from "../../../gen/codex/notification/v1/notification_service_pb.js";
import { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import { SchedulerService } from "../../../gen/codex/scheduler/v1/scheduler_service_pb.js";
import { WorkItemService } from "../../../gen/codex/workitem/v1/workitem_service_pb.js";
import { http } from "../../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../../gen/google/api/http_pb.js";

/** Rate-limit class of a route: one bucket per client and class. */
export type RouteClass = "read" | "write" | "agent" | "stream";

/** The deployables behind the gateway; `gateway` is the gateway's own gRPC server. */
export type UpstreamName =
  | "project"
  | "workitem"
  | "scheduler"
  | "agentmanager"
  | "notification"
  | "audit"
  | "gateway";

/** One REST binding of a method: a `google.api.http` rule or one of its additional bindings. */
export interface HttpBinding {
  /** Upper-case HTTP method (custom patterns keep their kind). */
  readonly verb: string;
  /** Path template, e.g. `/v1/projects/{project_id}:archive`. */
  readonly template: string;
  /** `""` (no body), `"*"` (the whole request) or the name of one request field. */
  readonly body: string;
  /** `""` (the whole response) or the name of the response field written as the body. */
  readonly responseBody: string;
}

/** A method callable through the front door. */
export interface PublicMethod {
  /** gRPC path, `/codex.project.v1.ProjectService/GetProject`. */
  readonly path: string;
  readonly service: DescService;
  readonly method: DescMethod;
  readonly upstream: UpstreamName;
  readonly routeClass: RouteClass;
  /** REST bindings; empty for gRPC-only public methods (client and bidi streams). */
  readonly bindings: readonly HttpBinding[];
}

/** Everything the front doors route by. */
export interface RouteTable {
  /** Public methods by gRPC path. */
  readonly public: ReadonlyMap<string, PublicMethod>;
  /** Internal methods (no annotation) by gRPC path: known, but refused at the gateway. */
  readonly internal: ReadonlyMap<string, DescMethod>;
  /** Every service behind the gateway. */
  readonly services: readonly DescService[];
}

/** Which deployable serves which service; the `<NAME>_ADDR` variables are in config.ts. */
export const GATEWAY_SERVICES: readonly { service: DescService; upstream: UpstreamName }[] = [
  { service: ProjectService, upstream: "project" },
  { service: WorkItemService, upstream: "workitem" },
  { service: SchedulerService, upstream: "scheduler" },
  { service: AgentManagerService, upstream: "agentmanager" },
  { service: NotificationService, upstream: "notification" },
  { service: AuditService, upstream: "audit" },
  { service: ApiKeyService, upstream: "gateway" },
  { service: IdentityService, upstream: "gateway" },
];

/**
 * Public methods that have no `google.api.http` annotation because HTTP/JSON cannot carry them
 * (client and bidi streams), not because they are internal: their proto comments say agents
 * call them through the agent SDK. They are routed over gRPC only.
 */
export const GRPC_ONLY_PUBLIC: ReadonlySet<string> = new Set([
  "/codex.agentmanager.v1.AgentManagerService/Connect",
  "/codex.workitem.v1.WorkItemService/UploadArtifact",
]);

/** The agent fleet's RPCs: their own bucket, so a busy fleet cannot starve people (and back). */
const AGENT_RPCS: ReadonlySet<string> = new Set(
  ["Connect", "ClaimRun", "RenewLease", "CompleteRun", "AppendLogs", "RequestInfo", "RegisterAgent"].map(
    (m) => `/codex.agentmanager.v1.AgentManagerService/${m}`,
  ),
);

const READ_PREFIX = /^(Get|List|Watch|Query|Verify|Export)/;

/**
 * The route class of a method. Agent RPCs are checked first, so the agents' long-lived Connect
 * stream counts against the agent bucket rather than the stream bucket people use for logs.
 */
export function routeClassOf(method: DescMethod): RouteClass {
  const path = `/${method.parent.typeName}/${method.name}`;
  if (AGENT_RPCS.has(path)) return "agent";
  if (method.methodKind !== "unary") return "stream";
  if (READ_PREFIX.test(method.name)) return "read";
  return "write";
}

/** A rule and its additional bindings, flattened (additional bindings do not nest). */
export function bindingsOf(method: DescMethod): HttpBinding[] {
  if (!hasOption(method, http)) return [];
  const rule = getOption(method, http);
  return [rule, ...rule.additionalBindings].flatMap((r) => {
    const b = bindingOf(r);
    return b ? [b] : [];
  });
}

function bindingOf(rule: HttpRule): HttpBinding | undefined {
  const p = rule.pattern;
  if (p.case === undefined) return undefined;
  const verb = p.case === "custom" ? p.value.kind.toUpperCase() : p.case.toUpperCase();
  const template = p.case === "custom" ? p.value.path : p.value;
  return { verb, template, body: rule.body, responseBody: rule.responseBody };
}

/** Builds the route table from the given services (all of GATEWAY_SERVICES by default). */
export function buildRouteTable(
  services: readonly { service: DescService; upstream: UpstreamName }[] = GATEWAY_SERVICES,
): RouteTable {
  const pub = new Map<string, PublicMethod>();
  const internal = new Map<string, DescMethod>();
  for (const { service, upstream } of services) {
    for (const method of service.methods) {
      const path = `/${service.typeName}/${method.name}`;
      const bindings = bindingsOf(method);
      if (bindings.length === 0 && !GRPC_ONLY_PUBLIC.has(path)) {
        internal.set(path, method);
        continue;
      }
      // grpc-gateway cannot stream requests over HTTP/1.1: such methods stay gRPC-only.
      const rest = method.methodKind === "unary" || method.methodKind === "server_streaming";
      pub.set(path, {
        path,
        service,
        method,
        upstream,
        routeClass: routeClassOf(method),
        bindings: rest ? bindings : [],
      });
    }
  }
  return { public: pub, internal, services: services.map((s) => s.service) };
}
