/**
 * HTTP/JSON ↔ protobuf for one REST binding, following grpc-gateway: the path binds fields, the
 * body fills the whole request (`body: "*"`) or one field, the query string the rest; responses
 * are proto3 JSON (camelCase names, 64-bit integers as strings, enums by name, unpopulated
 * fields emitted as grpc-gateway does).
 */
import {
  create,
  createRegistry,
  type DescFile,
  type DescMessage,
  type DescService,
  type JsonObject,
  type JsonValue,
  type Message,
  type MessageShape,
  mergeFromJson,
  type Registry,
  toJson,
} from "@bufbuild/protobuf";
import { file_google_rpc_error_details } from "../../../gen/google/rpc/error_details_pb.js";
import { file_google_rpc_status } from "../../../gen/google/rpc/status_pb.js";
import { invalidArgument } from "../../../mesh/errors.js";
import type { HttpBinding } from "../routes/route-table.js";
import { findField, queryToJson, scalarValue } from "./query-params.js";

/** Every type the APIs behind the gateway use, plus google.rpc details (for Any in JSON). */
export function jsonRegistry(services: readonly DescService[]): Registry {
  const files = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (files.has(f.name)) return;
    files.set(f.name, f);
    for (const d of f.dependencies) visit(d);
  };
  for (const s of services) visit(s.file);
  visit(file_google_rpc_error_details);
  visit(file_google_rpc_status);
  return createRegistry(...files.values());
}

/** Builds the request message; throws INVALID_ARGUMENT naming the offending field. */
export function requestFromHttp<D extends DescMessage>(
  input: D,
  binding: HttpBinding,
  pathParams: Readonly<Record<string, string>>,
  query: URLSearchParams,
  body: JsonValue | undefined,
  registry: Registry,
): MessageShape<D> {
  const opts = { ignoreUnknownFields: false, registry };
  const msg = create(input);
  const bound = new Set(Object.keys(pathParams).map((p) => p.split(".")[0]!));
  if (binding.body === "*") {
    read(() => mergeFromJson(input, msg, body ?? {}, opts));
  } else if (binding.body !== "") {
    const field = findField(input, binding.body);
    if (!field) throw new Error(`${input.typeName} has no body field "${binding.body}"`);
    bound.add(field.name);
    if (body !== undefined) read(() => mergeFromJson(input, msg, { [field.jsonName]: body }, opts));
  }
  if (binding.body !== "*") read(() => mergeFromJson(input, msg, queryToJson(input, query, bound), opts));
  else if ([...query.keys()].length > 0) {
    throw invalidArgument("query parameters are not accepted when the body is the whole request", [
      { field: [...query.keys()][0]!, description: "send it in the body", reason: "BAD_QUERY_PARAMETER" },
    ]);
  }
  // Path parameters last: they name the resource and win over anything the body said.
  read(() => mergeFromJson(input, msg, pathToJson(input, pathParams), opts));
  return msg;
}

/** The JSON written for a response (or for one streamed message). */
export function responseToJson(
  output: DescMessage,
  msg: Message,
  binding: HttpBinding | undefined,
  registry: Registry,
): JsonValue {
  const json = toJson(output, msg, { registry, alwaysEmitImplicit: true }) as JsonObject;
  if (!binding?.responseBody) return json;
  const field = findField(output, binding.responseBody);
  return field ? (json[field.jsonName] ?? null) : json;
}

function pathToJson(input: DescMessage, params: Readonly<Record<string, string>>): JsonObject {
  const root: JsonObject = {};
  for (const [fieldPath, value] of Object.entries(params)) {
    const names = fieldPath.split(".");
    let desc = input;
    let obj = root;
    for (let i = 0; i < names.length; i++) {
      const field = findField(desc, names[i]!);
      if (!field) throw new Error(`path variable ${fieldPath} names no field of ${desc.typeName}`);
      if (i < names.length - 1) {
        if (field.fieldKind !== "message") throw new Error(`path variable ${fieldPath}: not a message`);
        const next = (obj[field.jsonName] as JsonObject | undefined) ?? {};
        obj[field.jsonName] = next;
        obj = next;
        desc = field.message;
      } else if (field.fieldKind === "scalar") {
        obj[field.jsonName] = scalarValue(field.scalar, value);
      } else if (field.fieldKind === "enum") {
        obj[field.jsonName] = /^-?\d+$/.test(value) ? Number(value) : value;
      } else {
        obj[field.jsonName] = value;
      }
    }
  }
  return root;
}

const UNKNOWN_KEY = /key "([^"]+)" is unknown/;
const BAD_FIELD = /cannot decode field [\w.]*?\.(\w+) from JSON: (.*)$/;

/** Runs a JSON read, turning protobuf-es's errors into INVALID_ARGUMENT with a field violation. */
function read(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof Error) || err.name === "ServiceError") throw err;
    const unknown = UNKNOWN_KEY.exec(err.message);
    const bad = BAD_FIELD.exec(err.message);
    const field = unknown?.[1] ?? bad?.[1] ?? "";
    const description = unknown ? "unknown field" : (bad?.[2] ?? err.message);
    throw invalidArgument(`invalid request: ${err.message}`, [{ field, description }]);
  }
}
