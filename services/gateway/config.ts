/**
 * The gateway's own settings (the host adds PORT, MESH_SECRET, REDIS_URL, DATABASE_URL…).
 *
 * Ports: PORT (host.server, default 50051) serves the gateway's own gRPC services (ApiKeyService,
 * IdentityService), health and reflection — the mesh-internal side. GATEWAY_GRPC_PORT is the gRPC
 * front door (the proxy) and GATEWAY_HTTP_PORT the REST front door. 0 picks a free port (tests).
 */
import { type ConfigOf, type ConfigSpec, int, list, optional, port } from "../../mesh/config.js";
import type { UpstreamName } from "./routes/route-table.js";

const ADDRESS = /^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/;
const addresses = () => optional(list({ item: ADDRESS }));

export const gatewayConfigSpec = {
  /** gRPC front door: every public method of every service, forwarded as raw bytes. */
  GATEWAY_GRPC_PORT: port({ default: 50050, allowZero: true }),
  /** REST front door (HTTP/1.1, grpc-gateway conventions), plus /healthz and /readyz. */
  GATEWAY_HTTP_PORT: port({ default: 8080, allowZero: true }),
  /** Largest REST request body; larger bodies get 413. */
  GATEWAY_MAX_BODY_BYTES: int({ min: 1024, default: 4 * 1024 * 1024 }),
  /** Deadline of a REST unary call unless the client sends a shorter `Grpc-Timeout`. */
  GATEWAY_REST_TIMEOUT_MS: int({ min: 100, default: 30_000 }),
  /** Lifetime of the signed principal sent upstream (checked once, at call start). */
  GATEWAY_PRINCIPAL_TTL_MS: int({ min: 1_000, default: 60_000 }),
  PROJECT_ADDR: addresses(),
  WORKITEM_ADDR: addresses(),
  SCHEDULER_ADDR: addresses(),
  AGENT_MANAGER_ADDR: addresses(),
  NOTIFICATION_ADDR: addresses(),
  AUDIT_ADDR: addresses(),
} satisfies ConfigSpec;

export type GatewayConfigSpec = typeof gatewayConfigSpec;
export type GatewayConfig = ConfigOf<GatewayConfigSpec>;

/** The variable naming each upstream's addresses (comma-separated replicas, round-robin). */
export const UPSTREAM_ENV: Readonly<Record<Exclude<UpstreamName, "gateway">, keyof GatewayConfig>> = {
  project: "PROJECT_ADDR",
  workitem: "WORKITEM_ADDR",
  scheduler: "SCHEDULER_ADDR",
  agentmanager: "AGENT_MANAGER_ADDR",
  notification: "NOTIFICATION_ADDR",
  audit: "AUDIT_ADDR",
};

/**
 * Upstream addresses from the config. The gateway's own services are always reached on its own
 * host server (loopback), so their calls pass the same pipeline as every other service's.
 */
export function upstreamAddresses(
  config: GatewayConfig,
  selfAddress: () => string,
): (name: UpstreamName) => readonly string[] | undefined {
  return (name) => {
    if (name === "gateway") return [selfAddress()];
    const value = config[UPSTREAM_ENV[name]];
    return Array.isArray(value) ? (value as readonly string[]) : undefined;
  };
}
