import { Metadata } from "@grpc/grpc-js";
import type { Credentials } from "./types.js";

/**
 * Inbound keys never forwarded upstream: hop-by-hop and transport keys (grpc-js sets its own),
 * credentials (the upstream trusts the signed principal instead, and must never see a user's
 * token or key), and everything the gateway sets itself (a client cannot choose its principal,
 * request id or trace parent by sending them).
 */
const DROPPED = new Set([
  "authorization",
  "x-api-key",
  "cookie",
  "proxy-authorization",
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-type",
  "content-length",
  "user-agent",
  "x-request-id",
  "x-correlation-id",
  "traceparent",
  "tracestate",
]);

/** Prefixes never forwarded: transport (`grpc-`, pseudo-headers) and mesh-internal (`x-codex-`). */
const DROPPED_PREFIXES = ["grpc-", ":", "x-codex-"];

function dropped(key: string): boolean {
  return DROPPED.has(key) || DROPPED_PREFIXES.some((p) => key.startsWith(p));
}

/** The upstream call's metadata: the client's, minus what must not pass, plus the gateway's. */
export function forwardMetadata(inbound: Metadata, gatewayHeaders: Record<string, string>): Metadata {
  const out = new Metadata();
  for (const [key, values] of Object.entries(inbound.toJSON())) {
    if (dropped(key)) continue;
    for (const v of values) out.add(key, v);
  }
  for (const [k, v] of Object.entries(gatewayHeaders)) out.set(k, v);
  return out;
}

/**
 * Upstream metadata for a REST call. Only the grpc-gateway convention passes client data through:
 * `Grpc-Metadata-<key>` headers become `<key>` metadata (subject to the same filter).
 */
export function restMetadata(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  gatewayHeaders: Record<string, string>,
): Metadata {
  const out = new Metadata();
  for (const [name, value] of Object.entries(headers)) {
    if (!name.startsWith("grpc-metadata-") || value === undefined) continue;
    const key = name.slice("grpc-metadata-".length);
    if (key === "" || dropped(key) || key.endsWith("-bin")) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.add(key, v);
  }
  for (const [k, v] of Object.entries(gatewayHeaders)) out.set(k, v);
  return out;
}

/** The first string value of a metadata key. */
export function firstValue(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === "string" ? v : undefined;
}

/** Credentials from the `authorization` and `x-api-key` values, whichever door read them. */
export function credentialsOf(authorization: string | undefined, apiKey: string | undefined): Credentials {
  const creds: Credentials = {};
  if (authorization !== undefined) creds.authorization = authorization;
  if (apiKey !== undefined) creds.apiKey = apiKey;
  return creds;
}

/** Credentials presented in gRPC metadata. */
export function grpcCredentials(md: Metadata): Credentials {
  return credentialsOf(firstValue(md, "authorization"), firstValue(md, "x-api-key"));
}

/** Upstream response keys the gateway does not relay: transport keys its own server sets. */
const RESPONSE_DROPPED = new Set([
  "content-type",
  "date",
  "grpc-encoding",
  "grpc-accept-encoding",
  "x-request-id",
]);

/**
 * Response headers (or trailers) for the client: the upstream's, minus transport keys, plus the
 * gateway's (request id, rate-limit state). `grpc-status-details-bin` passes unchanged.
 */
export function responseMetadata(gatewayHeaders: Record<string, string>, upstream?: Metadata): Metadata {
  const md = new Metadata();
  if (upstream) {
    for (const [key, values] of Object.entries(upstream.toJSON())) {
      if (key.startsWith(":") || RESPONSE_DROPPED.has(key)) continue;
      for (const v of values) md.add(key, v);
    }
  }
  for (const [k, v] of Object.entries(gatewayHeaders)) md.set(k, v);
  return md;
}
