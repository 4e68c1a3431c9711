import type { DescField, DescMessage, JsonObject, JsonValue, Registry } from "@bufbuild/protobuf";
import { isSecretKey, REDACTED } from "../../../mesh/logging.js";

export { REDACTED };

/**
 * Why descriptor-aware: a field is secret either by name (the mesh-wide list in
 * mesh/logging.ts: "secret", "password", "token", info-request "values"...) or because its
 * proto declares `[debug_redact = true]`, which no name list can know about. Walking the JSON
 * beside the message descriptor catches both, at any depth, including map keys (an env var
 * `GITHUB_TOKEN` in a recipe) and messages packed in `google.protobuf.Any`.
 *
 * Unlike the logger's redactSecrets there is no depth limit: a secret nested nine levels deep
 * must not reach an append-only store, where it could never be removed again.
 */
export function redactMessageJson(desc: DescMessage, json: JsonValue, registry?: Registry): JsonValue {
  if (desc.typeName === "google.protobuf.Any") return redactAnyJson(json, registry);
  if (desc.typeName.startsWith("google.protobuf.")) return redactByName(json);
  if (!isObject(json)) return json;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(json)) {
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    if (value === null) out[key] = value;
    else if (field ? isSecretField(field) : isSecretKey(key)) out[key] = REDACTED;
    else out[key] = field ? redactFieldJson(field, value, registry) : redactByName(value);
  }
  return out;
}

/** Whether a field holds a secret: marked `debug_redact` in its proto or named like one. */
export function isSecretField(field: DescField): boolean {
  return field.proto.options?.debugRedact === true || isSecretKey(field.name);
}

function redactFieldJson(field: DescField, value: JsonValue, registry: Registry | undefined): JsonValue {
  switch (field.fieldKind) {
    case "message":
      return redactMessageJson(field.message, value, registry);
    case "list":
      if (field.listKind !== "message" || !Array.isArray(value)) return value;
      return value.map((item) => redactMessageJson(field.message, item, registry));
    case "map": {
      if (!isObject(value)) return value;
      const out: JsonObject = {};
      for (const [k, v] of Object.entries(value)) {
        if (v !== null && isSecretKey(k)) out[k] = REDACTED;
        else out[k] = field.mapKind === "message" ? redactMessageJson(field.message, v, registry) : v;
      }
      return out;
    }
    default:
      return value;
  }
}

/** An Any in JSON is `{"@type": url, ...fields}` (or `{"@type", "value"}` for well-known types). */
function redactAnyJson(json: JsonValue, registry: Registry | undefined): JsonValue {
  if (!isObject(json)) return json;
  const url = json["@type"];
  const inner =
    typeof url === "string" ? registry?.getMessage(url.slice(url.lastIndexOf("/") + 1)) : undefined;
  if (inner === undefined) return redactByName(json);
  const { "@type": type, ...rest } = json;
  const redacted = redactMessageJson(inner, rest, registry);
  return isObject(redacted) ? { "@type": type ?? null, ...redacted } : redacted;
}

/** Schema-less fallback (Struct, Value, unknown keys): redacts secret-named keys anywhere. */
export function redactByName(json: JsonValue): JsonValue {
  if (Array.isArray(json)) return json.map(redactByName);
  if (!isObject(json)) return json;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(json))
    out[k] = v !== null && isSecretKey(k) ? REDACTED : redactByName(v);
  return out;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
