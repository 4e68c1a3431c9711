import type { RouteClass } from "./route-table.js";

/** Where Envoy reads the token signing keys: fetched from the issuer, or a file in the pod. */
export type JwksSource =
  | {
      readonly kind: "remote";
      /** HTTPS URL of the issuer's JWKS document. */
      readonly uri: string;
      /** Host and port Envoy connects to for it, through a cluster of its own. */
      readonly host: string;
      readonly port: number;
      readonly cacheDuration: string;
    }
  | { readonly kind: "local"; readonly filename: string };

export interface JwtSettings {
  /** Name of the provider in jwt_authn; requirements refer to it. */
  readonly provider: string;
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwks: JwksSource;
}

/** What a route class means in Envoy terms. */
export interface ClassPolicy {
  /** Route timeout as an Envoy duration; "0s" disables it (long-lived streams). */
  readonly timeout: string;
  /** gRPC retry conditions; only conditions under which the upstream never saw the call for writes. */
  readonly retryOn: string;
  readonly numRetries: number;
  /** Local token bucket shared by every route of the class on one Envoy. */
  readonly bucket: {
    readonly maxTokens: number;
    readonly tokensPerFill: number;
    readonly fillInterval: string;
  };
  /** Circuit-breaker ceiling on concurrent requests to one upstream cluster. */
  readonly maxRequests: number;
}

export interface FrontDoorSettings {
  readonly listener: { readonly address: string; readonly port: number };
  /** Admin API: loopback only — it can drain listeners and dump config. */
  readonly admin: { readonly address: string; readonly port: number };
  /** Path of the buf-built descriptor set inside the Envoy container, for the transcoder. */
  readonly protoDescriptorPath: string;
  /** Plain-HTTP liveness path for the load balancer, answered by Envoy itself. */
  readonly healthPath: string;
  readonly jwt: JwtSettings;
  readonly classes: Readonly<Record<RouteClass, ClassPolicy>>;
  /** Header carrying the gateway-signed principal: never accepted from the internet. */
  readonly strippedRequestHeaders: readonly string[];
  readonly authz: AuthzSettings;
}

/**
 * ext_authz: the gateway deployable's `envoy.service.auth.v3.Authorization/Check` (its own gRPC
 * port) authenticates (JWT or API key), rate-limits per client, authorizes per project and mints
 * the signed principal for every request. Fails closed: no answer, no request.
 */
export interface AuthzSettings {
  /** Cluster of the gateway deployable (it must be in the route table). */
  readonly cluster: string;
  readonly timeout: string;
  /**
   * Largest unary or server-streaming request body buffered for the check (the authorizer reads
   * its project); larger requests are refused with 413 before reaching a service.
   */
  readonly maxRequestBytes: number;
}

/**
 * The production front door. These are deployment facts, not per-environment configuration: the
 * generated envoy.yaml is committed and reviewed, so every value here is visible in one diff.
 */
export const FRONT_DOOR: FrontDoorSettings = {
  listener: { address: "0.0.0.0", port: 8080 },
  admin: { address: "127.0.0.1", port: 9901 },
  protoDescriptorPath: "/etc/envoy/codex.binpb",
  healthPath: "/healthz",
  jwt: {
    provider: "codex",
    issuer: "https://auth.codex.dev",
    audiences: ["codex-orchestrator"],
    jwks: {
      kind: "remote",
      uri: "https://auth.codex.dev/.well-known/jwks.json",
      host: "auth.codex.dev",
      port: 443,
      cacheDuration: "600s",
    },
  },
  classes: {
    read: {
      timeout: "15s",
      retryOn: "unavailable,connect-failure,refused-stream",
      numRetries: 2,
      bucket: { maxTokens: 2000, tokensPerFill: 1000, fillInterval: "1s" },
      maxRequests: 2048,
    },
    write: {
      timeout: "30s",
      retryOn: "connect-failure,refused-stream",
      numRetries: 1,
      bucket: { maxTokens: 400, tokensPerFill: 200, fillInterval: "1s" },
      maxRequests: 1024,
    },
    agent: {
      timeout: "0s",
      retryOn: "connect-failure,refused-stream",
      numRetries: 1,
      bucket: { maxTokens: 5000, tokensPerFill: 2500, fillInterval: "1s" },
      maxRequests: 10000,
    },
  },
  strippedRequestHeaders: ["x-codex-principal"],
  authz: { cluster: "gateway", timeout: "2s", maxRequestBytes: 1024 * 1024 },
};
