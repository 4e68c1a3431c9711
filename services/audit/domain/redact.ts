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
  const fields = fieldsOf(desc);
  const out: JsonObject = {};
  for (const key in json) {
    const value = json[key] as JsonValue;
    const field = fields.get(key);
    if (value === null) out[key] = value;
    else if (field ? field.secret : secretKey(key)) out[key] = REDACTED;
    else out[key] = field ? redactFieldJson(field.field, value, registry) : redactByName(value);
  }
  return out;
}

/** Whether a field holds a secret: marked `debug_redact` in its proto or named like one. */
export function isSecretField(field: DescField): boolean {
  return field.proto.options?.debugRedact === true || isSecretKey(field.name);
}

/**
 * Whether redaction can change the proto3 JSON of a `desc` message as toJson renders it (only
 * known fields): some reachable field is secret, or a map (its keys may name secrets), or a
 * message whose JSON has free-form keys (Any, Struct, Value...). Most events hold none, and
 * their JSON need not be walked and copied at all.
 */
export function mayNeedRedaction(desc: DescMessage): boolean {
  let known = needsRedaction.get(desc);
  if (known === undefined) {
    known = reachableMessages(desc).some(
      (m) =>
        (m.typeName.startsWith("google.protobuf.") && !PLAIN_WELL_KNOWN.has(m.typeName)) ||
        m.fields.some((f) => f.fieldKind === "map" || isSecretField(f)),
    );
    needsRedaction.set(desc, known);
  }
  return known;
}

/** Well-known types whose JSON is a plain value or an object without free-form keys. */
const PLAIN_WELL_KNOWN = new Set(
  ["Timestamp", "Duration", "FieldMask", "Empty", "BoolValue", "BytesValue", "StringValue"]
    .concat(["DoubleValue", "FloatValue", "Int32Value", "Int64Value", "UInt32Value", "UInt64Value"])
    .map((n) => `google.protobuf.${n}`),
);

const needsRedaction = new WeakMap<DescMessage, boolean>();

/** `desc` and every message type its fields lead to (not into well-known types), once each. */
function reachableMessages(desc: DescMessage): DescMessage[] {
  const seen = new Set<DescMessage>([desc]);
  const queue = [desc];
  for (let m = queue.pop(); m !== undefined; m = queue.pop()) {
    if (m.typeName.startsWith("google.protobuf.")) continue;
    for (const f of m.fields) {
      const next =
        f.fieldKind === "message" || f.fieldKind === "list" || f.fieldKind === "map" ? f.message : undefined;
      if (next !== undefined && !seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return [...seen];
}

/** A message's fields by proto and JSON name, with whether each is secret (computed once). */
function fieldsOf(desc: DescMessage): Map<string, { field: DescField; secret: boolean }> {
  let fields = fieldIndex.get(desc);
  if (fields === undefined) {
    fields = new Map();
    for (const field of desc.fields) {
      const entry = { field, secret: isSecretField(field) };
      fields.set(field.jsonName, entry);
      fields.set(field.name, entry); // the proto name wins where the two collide, as before
    }
    fieldIndex.set(desc, fields);
  }
  return fields;
}

const fieldIndex = new WeakMap<DescMessage, Map<string, { field: DescField; secret: boolean }>>();

/** {@link isSecretKey}, remembered: map keys (labels, env names) repeat from event to event. */
function secretKey(key: string): boolean {
  let secret = secretKeys.get(key);
  if (secret === undefined) {
    if (secretKeys.size >= 10_000) secretKeys.clear();
    secret = isSecretKey(key);
    secretKeys.set(key, secret);
  }
  return secret;
}

const secretKeys = new Map<string, boolean>();

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
        if (v !== null && secretKey(k)) out[k] = REDACTED;
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
  for (const [k, v] of Object.entries(json)) out[k] = v !== null && secretKey(k) ? REDACTED : redactByName(v);
  return out;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
