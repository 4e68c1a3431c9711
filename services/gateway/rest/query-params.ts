import {
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  ScalarType,
} from "@bufbuild/protobuf";
import { invalidArgument } from "../../../mesh/errors.js";

/** Well-known types whose JSON form is a string, so a query parameter can carry them. */
const STRING_WKT = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
  "google.protobuf.Int32Value",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.FloatValue",
  "google.protobuf.DoubleValue",
]);

const KEY = /^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\[([^\]]*)\])?$/;

/**
 * Query parameters as a proto3 JSON object, the grpc-gateway way: `a.b=1` sets a nested field,
 * repeating a parameter fills a repeated field, `labels[env]=prod` sets a map entry, enums go by
 * name (or number), well-known types by their JSON string (`start_time=2026-01-01T00:00:00Z`).
 * Field names may be the proto name or the JSON name. `bound` holds the top-level fields the path
 * or body already set: naming them again is refused, as is any parameter naming no field —
 * a typo must not silently mean "no filter".
 */
export function queryToJson(
  desc: DescMessage,
  query: URLSearchParams,
  bound: ReadonlySet<string>,
): JsonObject {
  const root: JsonObject = {};
  for (const [key, raw] of query) {
    const m = KEY.exec(key);
    if (!m) throw badParam(key, "is not a field path");
    const names = m[1]!.split(".");
    const mapKey = m[2];
    let msg = desc;
    let obj = root;
    for (let i = 0; i < names.length; i++) {
      const field = findField(msg, names[i]!);
      if (!field) throw badParam(key, `names no field of ${msg.typeName}`);
      if (i === 0 && bound.has(field.name)) throw badParam(key, "is already set by the path or the body");
      const last = i === names.length - 1;
      if (!last) {
        if (field.fieldKind !== "message" || STRING_WKT.has(field.message.typeName)) {
          throw badParam(key, `"${field.name}" is not a message`);
        }
        obj = child(obj, field.jsonName, key);
        msg = field.message;
        continue;
      }
      setLeaf(obj, field, raw, key, mapKey);
    }
  }
  return root;
}

function setLeaf(obj: JsonObject, field: DescField, raw: string, key: string, mapKey: string | undefined) {
  if (field.fieldKind === "map") {
    if (mapKey === undefined) throw badParam(key, "is a map: use name[key]=value");
    if (field.mapKind === "message") throw badParam(key, "map of messages cannot be set from a query");
    const map = child(obj, field.jsonName, key);
    map[mapKey] = field.mapKind === "enum" ? enumValue(raw) : scalarValue(field.scalar, raw);
    return;
  }
  if (mapKey !== undefined) throw badParam(key, "is not a map");
  if (field.fieldKind === "list") {
    if (field.listKind === "message") throw badParam(key, "repeated messages cannot be set from a query");
    const list = Array.isArray(obj[field.jsonName]) ? (obj[field.jsonName] as JsonValue[]) : [];
    obj[field.jsonName] = list;
    list.push(field.listKind === "enum" ? enumValue(raw) : scalarValue(field.scalar, raw));
    return;
  }
  if (obj[field.jsonName] !== undefined) throw badParam(key, "is given more than once for a singular field");
  if (field.fieldKind === "message") {
    const t = field.message.typeName;
    if (t === "google.protobuf.BoolValue") obj[field.jsonName] = scalarValue(ScalarType.BOOL, raw);
    else if (t === "google.protobuf.FieldMask") obj[field.jsonName] = fieldMaskJson(raw);
    else if (STRING_WKT.has(t)) obj[field.jsonName] = raw;
    else throw badParam(key, `is a ${t} message: set its fields with ${key}.<field>`);
    return;
  }
  obj[field.jsonName] = field.fieldKind === "enum" ? enumValue(raw) : scalarValue(field.scalar, raw);
}

/** Proto name or JSON name, as proto3 JSON parsers accept both. */
export function findField(desc: DescMessage, name: string): DescField | undefined {
  return desc.fields.find((f) => f.name === name || f.jsonName === name);
}

function child(obj: JsonObject, name: string, key: string): JsonObject {
  const existing = obj[name];
  if (existing === undefined) {
    const created: JsonObject = {};
    obj[name] = created;
    return created;
  }
  if (typeof existing !== "object" || existing === null || Array.isArray(existing)) {
    throw badParam(key, "conflicts with another parameter");
  }
  return existing;
}

/**
 * The JSON value of a scalar written as text. proto3 JSON takes every number as a string (64-bit
 * ones must be), and bytes as base64; only booleans need converting.
 */
export function scalarValue(type: ScalarType, raw: string): JsonValue {
  if (type !== ScalarType.BOOL) return raw;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  return raw; // let the JSON reader report the bad boolean with its field name
}

/**
 * grpc-gateway reads a FieldMask query parameter as comma-separated proto paths
 * (`update_mask=display_name,labels`); its JSON form wants lowerCamelCase, so convert.
 */
function fieldMaskJson(raw: string): string {
  return raw
    .split(",")
    .map((path) => path.trim().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()))
    .join(",");
}

function enumValue(raw: string): JsonValue {
  return /^-?\d+$/.test(raw) ? Number(raw) : raw;
}

function badParam(key: string, problem: string) {
  return invalidArgument(`query parameter "${key}" ${problem}`, [
    { field: key, description: `query parameter ${problem}`, reason: "BAD_QUERY_PARAMETER" },
  ]);
}
