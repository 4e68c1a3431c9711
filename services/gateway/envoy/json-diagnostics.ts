import type { DescField, DescMessage, JsonObject, JsonValue, Registry } from "@bufbuild/protobuf";
import { fromJson } from "@bufbuild/protobuf";

/**
 * Finds *where* a JSON document fails to decode, and every place it does.
 *
 * protobuf-es `fromJson` stops at the first problem and names only the innermost type ("key
 * \"bogus\" is unknown" in some Listener). For an envoy.yaml of a few hundred lines that is not
 * enough, so on failure we descend: each message-valued child is decoded on its own, and a node
 * reports an error itself only for what remains once its children are accounted for. The happy
 * path costs one `fromJson`; only failing branches are revisited.
 */
export function findJsonErrors(desc: DescMessage, json: JsonValue, registry: Registry): string[] {
  const out: string[] = [];
  walk(desc, json, "", registry, out);
  return out;
}

/** Types with a special JSON form: decoded as a whole, never descended into. */
const SPECIAL_JSON = new Set([
  "google.protobuf.Duration",
  "google.protobuf.Timestamp",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

function walk(desc: DescMessage, json: JsonValue, path: string, registry: Registry, out: string[]): void {
  const error = decodeError(desc, json, registry);
  if (error === undefined) return;
  if (!isObject(json) || SPECIAL_JSON.has(desc.typeName)) {
    out.push(at(path, error));
    return;
  }
  if (desc.typeName === "google.protobuf.Any") {
    walkAny(json, path, error, registry, out);
    return;
  }
  const before = out.length;
  const own: JsonObject = {};
  for (const [key, value] of Object.entries(json)) {
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    const child = field === undefined ? undefined : messageOf(field);
    const childPath = path === "" ? key : `${path}.${key}`;
    if (child === undefined || value === null) {
      own[key] = value;
    } else if (field?.fieldKind === "message") {
      walk(child, value, childPath, registry, out);
    } else if (field?.fieldKind === "list" && Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(child, item, `${childPath}[${i}]`, registry, out);
    } else if (field?.fieldKind === "map" && isObject(value)) {
      for (const [k, v] of Object.entries(value))
        walk(child, v, `${childPath}[${JSON.stringify(k)}]`, registry, out);
    } else {
      own[key] = value;
    }
  }
  reportOwnFields(desc, own, path, registry, out);
  if (out.length === before) out.push(at(path, error));
}

/** Pins a scalar-level problem (unknown key, bad enum…) to its key when one key alone fails. */
function reportOwnFields(
  desc: DescMessage,
  own: JsonObject,
  path: string,
  registry: Registry,
  out: string[],
): void {
  const error = decodeError(desc, own, registry);
  if (error === undefined) return;
  const before = out.length;
  for (const [key, value] of Object.entries(own)) {
    const keyError = decodeError(desc, { [key]: value }, registry);
    if (keyError !== undefined) out.push(at(path === "" ? key : `${path}.${key}`, keyError));
  }
  // Every key is fine alone but not together: a oneof set twice, say.
  if (out.length === before) out.push(at(path, error));
}

/** An `Any` is checked as the message its `@type` names, so errors point inside typed_config. */
function walkAny(json: JsonObject, path: string, error: string, registry: Registry, out: string[]): void {
  const typeUrl = json["@type"];
  const inner =
    typeof typeUrl === "string"
      ? registry.getMessage(typeUrl.slice(typeUrl.lastIndexOf("/") + 1))
      : undefined;
  if (inner === undefined) {
    out.push(at(path, error));
    return;
  }
  const { "@type": _, ...rest } = json;
  const before = out.length;
  if (SPECIAL_JSON.has(inner.typeName) || inner.typeName === "google.protobuf.Any") {
    walk(inner, rest.value ?? null, `${path}.value`, registry, out);
  } else {
    walk(inner, rest, path, registry, out);
  }
  if (out.length === before) out.push(at(path, error));
}

function decodeError(desc: DescMessage, json: JsonValue, registry: Registry): string | undefined {
  try {
    fromJson(desc, json, { registry });
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

function messageOf(field: DescField): DescMessage | undefined {
  switch (field.fieldKind) {
    case "message":
      return field.message;
    case "list":
      return field.listKind === "message" ? field.message : undefined;
    case "map":
      return field.mapKind === "message" ? field.message : undefined;
    default:
      return undefined;
  }
}

function isObject(json: JsonValue): json is JsonObject {
  return typeof json === "object" && json !== null && !Array.isArray(json);
}

function at(path: string, message: string): string {
  return path === "" ? message : `${path}: ${message}`;
}
