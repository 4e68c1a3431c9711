import type { DescField, DescMessage, Message, Registry } from "@bufbuild/protobuf";
import { isMessage } from "@bufbuild/protobuf";
import type { ReflectMessage } from "@bufbuild/protobuf/reflect";
import { isReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import { AnySchema, anyUnpack } from "@bufbuild/protobuf/wkt";
import type { Bounds, FieldRules, RuleBook } from "./pgv-rules.js";

/**
 * Applies the PGV rules Envoy enforces at load time to a decoded Bootstrap, descending into every
 * `Any` through the registry so `typed_config` contents are checked too.
 *
 * Semantics follow protoc-gen-validate: proto3 scalars are checked even when unset (an absent
 * `stat_prefix` is an empty string, and `min_len: 1` refuses it); wrapper types and messages only
 * when present; only the member a oneof holds is checked.
 */
export function checkRules(root: Message, desc: DescMessage, registry: Registry, book: RuleBook): string[] {
  const out: string[] = [];
  visit(reflect(desc, root), "", registry, book, out);
  return out;
}

function visit(msg: ReflectMessage, path: string, registry: Registry, book: RuleBook, out: string[]): void {
  const any = msg.message;
  if (isMessage(any, AnySchema)) {
    const innerDesc = registry.getMessage(any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1));
    const inner = anyUnpack(any, registry);
    if (innerDesc !== undefined && inner !== undefined)
      visit(reflect(innerDesc, inner), path, registry, book, out);
    return;
  }
  const rules = book.get(msg.desc.typeName);
  for (const oneof of msg.desc.oneofs) {
    if (rules?.requiredOneofs.has(oneof.name) && msg.oneofCase(oneof) === undefined) {
      const names = oneof.fields.map((f) => f.name).join(", ");
      out.push(`${join(path, oneof.name)}: one of [${names}] is required`);
    }
  }
  for (const field of msg.desc.fields) {
    if (field.oneof !== undefined && msg.oneofCase(field.oneof) !== field) continue;
    const fieldPath = join(path, field.name);
    const fieldRules = rules?.fields.get(field.name);
    if (fieldRules !== undefined) checkField(msg, field, fieldRules, fieldPath, out);
    if (msg.isSet(field)) descend(msg, field, fieldPath, registry, book, out);
  }
}

function descend(
  msg: ReflectMessage,
  field: DescField,
  path: string,
  registry: Registry,
  book: RuleBook,
  out: string[],
): void {
  const value = msg.get(field);
  if (field.fieldKind === "message" && isReflectMessage(value)) {
    visit(value, path, registry, book, out);
  } else if (field.fieldKind === "list" && field.listKind === "message") {
    for (const [i, item] of msg.get(field).entries()) {
      if (isReflectMessage(item)) visit(item, `${path}[${i}]`, registry, book, out);
    }
  } else if (field.fieldKind === "map" && field.mapKind === "message") {
    for (const [key, item] of msg.get(field)) {
      if (isReflectMessage(item)) visit(item, `${path}[${JSON.stringify(String(key))}]`, registry, book, out);
    }
  }
}

function checkField(
  msg: ReflectMessage,
  field: DescField,
  rules: FieldRules,
  path: string,
  out: string[],
): void {
  const set = msg.isSet(field);
  switch (field.fieldKind) {
    case "message": {
      if (!set) {
        if (rules.required) out.push(`${path}: is required`);
        return;
      }
      // Scalar rules on a wrapper (UInt32Value…) apply to the wrapped value.
      const value = msg.get(field);
      const inner = field.message.fields.find((f) => f.name === "value");
      if (
        inner !== undefined &&
        field.message.typeName.startsWith("google.protobuf.") &&
        isReflectMessage(value)
      ) {
        checkScalar(value.get(inner), rules, path, out);
      }
      return;
    }
    case "list": {
      const size = msg.get(field).size;
      if (size === 0 && rules.ignoreEmpty) return;
      if (rules.minItems !== undefined && size < rules.minItems) {
        out.push(`${path}: needs at least ${rules.minItems} item(s), has ${size}`);
      }
      if (rules.maxItems !== undefined && size > rules.maxItems) {
        out.push(`${path}: allows at most ${rules.maxItems} item(s), has ${size}`);
      }
      return;
    }
    case "map": {
      const size = msg.get(field).size;
      if (rules.minPairs !== undefined && size < rules.minPairs) {
        out.push(`${path}: needs at least ${rules.minPairs} entr(ies), has ${size}`);
      }
      return;
    }
    case "enum": {
      const value = msg.get(field);
      if (rules.definedOnly && field.enum.values.every((v) => v.number !== value)) {
        out.push(`${path}: ${value} is not a defined ${field.enum.typeName} value`);
      }
      return;
    }
    case "scalar":
      // proto3-optional scalars are checked only when present, like messages.
      if (field.proto.proto3Optional && !set) return;
      checkScalar(msg.get(field), rules, path, out);
      return;
  }
}

function checkScalar(value: unknown, rules: FieldRules, path: string, out: string[]): void {
  if (typeof value === "string" || value instanceof Uint8Array) {
    const length = typeof value === "string" ? [...value].length : value.length;
    if (length === 0 && rules.ignoreEmpty) return;
    if (rules.minLen !== undefined && length < rules.minLen) {
      out.push(`${path}: must be at least ${rules.minLen} character(s) long, is ${length}`);
    }
    return;
  }
  if ((typeof value === "number" || typeof value === "bigint") && rules.bounds !== undefined) {
    const n = Number(value);
    if (n === 0 && rules.ignoreEmpty) return;
    const broken = brokenBound(n, rules.bounds);
    if (broken !== undefined) out.push(`${path}: ${n} must be ${broken}`);
  }
}

function brokenBound(n: number, b: Bounds): string | undefined {
  if (b.gt !== undefined && !(n > b.gt)) return `> ${b.gt}`;
  if (b.gte !== undefined && !(n >= b.gte)) return `>= ${b.gte}`;
  if (b.lt !== undefined && !(n < b.lt)) return `< ${b.lt}`;
  if (b.lte !== undefined && !(n <= b.lte)) return `<= ${b.lte}`;
  return undefined;
}

function join(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}
