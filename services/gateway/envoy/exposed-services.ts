import type { PublicService } from "./proto-image.js";
import type { RouteClass, Upstream } from "./route-table.js";
import { DEFAULT_GRPC_PORT } from "./route-table.js";

/** A public service joined with the deployable that serves it. */
export interface ExposedService {
  readonly service: PublicService;
  readonly cluster: string;
  readonly port: number;
  readonly routeClass: RouteClass;
}

/**
 * Joins the public services found in the protos with the route table. A public service whose
 * package has no entry is an error, not a silent omission: the author annotated it for REST, so
 * they expect it to be reachable, and the fix (one line in route-table.ts) is named in the message.
 */
export function exposeServices(
  services: readonly PublicService[],
  table: readonly Upstream[],
): ExposedService[] {
  const byPackage = new Map(table.map((u) => [u.package, u]));
  const unrouted = services.filter((s) => !byPackage.has(s.package)).map((s) => s.typeName);
  if (unrouted.length > 0) {
    throw new Error(
      `public services without an upstream: ${unrouted.join(", ")} — add their package to ROUTE_TABLE in services/gateway/envoy/route-table.ts`,
    );
  }
  return services.map((service) => {
    const upstream = byPackage.get(service.package)!;
    return {
      service,
      cluster: upstream.cluster,
      port: upstream.port ?? DEFAULT_GRPC_PORT,
      routeClass: upstream.serviceClasses?.[service.name] ?? upstream.routeClass,
    };
  });
}

/** The upstreams routes point at, once each, in name order; port conflicts are refused. */
export function upstreamsOf(
  exposed: readonly ExposedService[],
  table: readonly Upstream[],
  extra: readonly string[],
): { readonly cluster: string; readonly port: number }[] {
  const ports = new Map<string, number>();
  for (const e of exposed) {
    const known = ports.get(e.cluster);
    if (known !== undefined && known !== e.port) throw new Error(`cluster ${e.cluster} has two ports`);
    ports.set(e.cluster, e.port);
  }
  for (const name of extra) {
    if (ports.has(name)) continue;
    const upstream = table.find((u) => u.cluster === name);
    if (upstream === undefined) throw new Error(`cluster ${name} is not in the route table`);
    ports.set(name, upstream.port ?? DEFAULT_GRPC_PORT);
  }
  return [...ports.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([cluster, port]) => ({ cluster, port }));
}
