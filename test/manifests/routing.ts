/**
 * Just enough of Istio's HTTP route matching (first match wins; uri exact/prefix/regex and
 * header prefix/exact) to ask "which route of this VirtualService would take this call?".
 */
import type { Manifest } from "./render.js";

// biome-ignore lint/suspicious/noExplicitAny: rendered YAML
type Obj = any;

function stringMatches(m: Obj, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (m.exact !== undefined) return value === m.exact;
  if (m.prefix !== undefined) return value.startsWith(m.prefix);
  // Envoy's safe_regex matches the whole value.
  if (m.regex !== undefined) return new RegExp(`^(?:${m.regex})$`).test(value);
  return false;
}

function requestMatches(match: Obj, path: string, headers: Record<string, string>): boolean {
  if (match.uri && !stringMatches(match.uri, path)) return false;
  return Object.entries(match.headers ?? {}).every(([name, m]) => stringMatches(m, headers[name]));
}

/** The http route of `vs` that serves a request, or undefined when none matches. */
export function routeFor(vs: Manifest, path: string, headers: Record<string, string> = {}): Obj | undefined {
  return (vs.spec.http ?? []).find(
    (r: Obj) => !r.match || r.match.some((m: Obj) => requestMatches(m, path, headers)),
  );
}

/** gRPC requests carry this content type; the ingress routes on it. */
export const GRPC = { "content-type": "application/grpc" };

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 };
const DECIMAL: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9 };

/** Bytes of a Kubernetes memory quantity ("160Mi", "256M", "1Gi"). */
export function bytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(quantity);
  if (!m) throw new Error(`unsupported quantity ${quantity}`);
  const unit = m[2] ?? "";
  return Number(m[1]) * (BINARY[unit] ?? DECIMAL[unit]!);
}
