import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";
import { parseDocument } from "yaml";
import { loadEnvoyRegistry } from "./envoy-registry.js";
import { findJsonErrors } from "./json-diagnostics.js";
import { checkRules } from "./pgv-check.js";

/** Outcome of {@link validateEnvoyConfig}: every problem found, each prefixed by its path. */
export type EnvoyValidation =
  | { readonly ok: true }
  | { readonly ok: false; readonly errors: readonly string[] };

/**
 * Checks an Envoy v3 bootstrap (YAML or JSON text) against Envoy's own API protos, as strictly as
 * Envoy does when it starts: unknown fields, unknown enum names, malformed durations and `@type`
 * URLs naming no known type are all refused; once the document decodes, the common PGV rules
 * (required fields and oneofs, minimum lengths and counts, numeric bounds) are applied too.
 *
 * Envoy cannot run on our machines, so this is the only thing standing between a generated
 * envoy.yaml and a front door that refuses to boot. The first call loads the API (~0.5 s); later
 * calls reuse it.
 */
export function validateEnvoyConfig(text: string): EnvoyValidation {
  const parsed = parseYaml(text);
  if (!parsed.ok) return parsed;
  const { registry, bootstrap, rules } = loadEnvoyRegistry();
  let errors: readonly string[];
  try {
    const message = fromJson(bootstrap, parsed.json, { registry });
    errors = checkRules(message, bootstrap, registry, rules);
  } catch {
    errors = findJsonErrors(bootstrap, parsed.json, registry);
  }
  return errors.length === 0 ? { ok: true } : { ok: false, errors };
}

type Parsed =
  | { readonly ok: true; readonly json: JsonObject }
  | { readonly ok: false; readonly errors: string[] };

/**
 * YAML as Envoy reads it: merge keys allowed, duplicate keys refused (Envoy's loader refuses them
 * too, and silently keeping the last one hides mistakes).
 */
function parseYaml(text: string): Parsed {
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) return { ok: false, errors: doc.errors.map((e) => `yaml: ${e.message}`) };
  const problems: string[] = [];
  const json = toJson(doc.toJS({ maxAliasCount: 1000 }), "", problems);
  if (problems.length > 0) return { ok: false, errors: problems };
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return { ok: false, errors: ["the document must be a mapping (an Envoy Bootstrap)"] };
  }
  return { ok: true, json };
}

/** Narrows what the YAML parser produced to JSON, naming any value JSON cannot carry. */
function toJson(value: unknown, path: string, problems: string[]): JsonValue {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (Number.isFinite(value)) return value;
    problems.push(`${path || "document"}: ${value} is not a JSON number`);
    return null;
  }
  if (Array.isArray(value)) return value.map((v, i) => toJson(v, `${path}[${i}]`, problems));
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value))
      out[k] = toJson(v, path === "" ? k : `${path}.${k}`, problems);
    return out;
  }
  problems.push(`${path || "document"}: a ${typeof value} value has no JSON form`);
  return null;
}
