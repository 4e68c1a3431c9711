/**
 * A few of the checks istiod's validating webhook makes beyond the CRD schema, re-stated from
 * istio/istio pkg/config/validation, so a file it would refuse fails here first. The schema
 * knows a duration only as a string and retryOn only as free text.
 */

import type { Manifest } from "./render.js";
import { label } from "./schemas.js";

/** Envoy's retry-on conditions that Istio accepts (plus HTTP status codes). */
export const RETRY_ON = new Set([
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "envoy-ratelimited",
  "http3-post-connect-failure",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
]);

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, ns: 0.000001 };

/** Milliseconds of a Go-style duration ("1h", "2.5s", "300ms"), or undefined when malformed. */
export function durationMs(text: unknown): number | undefined {
  if (typeof text !== "string" || !/^(\d+(\.\d+)?(h|ms|m|s|us|ns))+$/.test(text)) return undefined;
  let ms = 0;
  for (const [, n, , unit] of text.matchAll(/(\d+(\.\d+)?)(h|ms|m|s|us|ns)/g))
    ms += Number(n) * UNIT_MS[unit!]!;
  return ms;
}

/** Istio refuses durations under 1 ms or finer than 1 ms (so `timeout: 0s` is refused). */
function checkDuration(where: string, value: unknown, out: string[]): void {
  if (value === undefined) return;
  const ms = durationMs(value);
  if (ms === undefined) out.push(`${where}: ${JSON.stringify(value)} is not a duration`);
  else if (ms < 1 || !Number.isInteger(ms))
    out.push(`${where}: ${value} must be whole milliseconds, at least 1ms`);
}

// biome-ignore lint/suspicious/noExplicitAny: walks rendered YAML
type Obj = any;

function virtualService(m: Manifest, out: string[]): void {
  (m.spec.http ?? []).forEach((route: Obj, i: number) => {
    const at = `${label(m)} http[${i}]${route.name ? ` (${route.name})` : ""}`;
    checkDuration(`${at} timeout`, route.timeout, out);
    const r = route.retries;
    if (r) {
      if (!(r.attempts >= 0)) out.push(`${at}: retries.attempts must be >= 0`);
      if (r.attempts === 0 && (r.perTryTimeout || r.retryOn))
        out.push(`${at}: retries with attempts 0 (disabled) must set nothing else`);
      checkDuration(`${at} perTryTimeout`, r.perTryTimeout, out);
      for (const cond of String(r.retryOn ?? "")
        .split(",")
        .filter(Boolean))
        if (!RETRY_ON.has(cond) && !/^[1-5]\d\d$/.test(cond))
          out.push(`${at}: "${cond}" is not a retryOn policy`);
    }
    const weights = (route.route ?? []).map((d: Obj) => d.weight ?? 0);
    if (weights.length > 1 && weights.reduce((a: number, b: number) => a + b, 0) !== 100)
      out.push(`${at}: weights ${weights.join("+")} do not sum to 100`);
  });
}

function destinationRule(m: Manifest, out: string[]): void {
  const policies = [m.spec.trafficPolicy, ...(m.spec.subsets ?? []).map((s: Obj) => s.trafficPolicy)];
  for (const p of policies.filter(Boolean)) {
    checkDuration(`${label(m)} connectTimeout`, p.connectionPool?.tcp?.connectTimeout, out);
    checkDuration(`${label(m)} idleTimeout`, p.connectionPool?.http?.idleTimeout, out);
    checkDuration(`${label(m)} outlierDetection.interval`, p.outlierDetection?.interval, out);
    checkDuration(`${label(m)} outlierDetection.baseEjectionTime`, p.outlierDetection?.baseEjectionTime, out);
  }
  for (const s of m.spec.subsets ?? [])
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s.name))
      out.push(`${label(m)}: subset name ${s.name} is invalid`);
}

function authorizationPolicy(m: Manifest, out: string[]): void {
  for (const rule of m.spec.rules ?? []) {
    for (const from of rule.from ?? [])
      for (const p of from.source?.principals ?? [])
        if (p.startsWith("spiffe://")) out.push(`${label(m)}: principal ${p} must not carry spiffe://`);
    // Istio matches exact, prefix (`/a/*`) or suffix (`*/a`) only.
    for (const to of rule.to ?? [])
      for (const p of [...(to.operation?.paths ?? []), ...(to.operation?.notPaths ?? [])])
        if (p !== "*" && p.slice(1, -1).includes("*")) out.push(`${label(m)}: path ${p} has * inside`);
  }
}

/** Problems istiod would refuse, one line each. */
export function istioProblems(docs: readonly Manifest[]): string[] {
  const out: string[] = [];
  for (const m of docs) {
    if (m.kind === "VirtualService") virtualService(m, out);
    if (m.kind === "DestinationRule") destinationRule(m, out);
    if (m.kind === "AuthorizationPolicy") authorizationPolicy(m, out);
  }
  return out;
}
