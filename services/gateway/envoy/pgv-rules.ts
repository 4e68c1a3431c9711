import protobuf from "protobufjs";

/**
 * The subset of protoc-gen-validate rules Envoy's API declares most often, read from the
 * protobufjs tree (the descriptor set handed to protobuf-es drops all options).
 *
 * Envoy runs these rules when it loads a config, so a config that merely decodes can still be
 * refused at boot: an empty `stat_prefix`, a cluster without a name, an HttpConnectionManager
 * with no route specifier. Together these kinds cover ~90% of the rules in the v3 API; the rest
 * (regexes, duration bounds, string patterns, `in`/`not_in` lists) are not checked.
 */
export interface FieldRules {
  /** `message.required`, `duration.required`, `any.required`: the field must be set. */
  readonly required: boolean;
  /** `enum.defined_only`: numeric values outside the enum are refused. */
  readonly definedOnly: boolean;
  /** `string.ignore_empty` and friends: skip the rules when the value is empty. */
  readonly ignoreEmpty: boolean;
  /** `string.min_len` (characters) or `bytes.min_len`. */
  readonly minLen: number | undefined;
  readonly minItems: number | undefined;
  readonly maxItems: number | undefined;
  readonly minPairs: number | undefined;
  /** Numeric bounds of `uint32`, `int64`, `double`… rules (also applied inside wrapper types). */
  readonly bounds: Bounds | undefined;
}

export interface Bounds {
  readonly gt?: number;
  readonly gte?: number;
  readonly lt?: number;
  readonly lte?: number;
}

export interface MessageRules {
  readonly fields: ReadonlyMap<string, FieldRules>;
  /** Oneofs marked `(validate.required) = true`: exactly one member must be set. */
  readonly requiredOneofs: ReadonlySet<string>;
}

/** Rules per message type name (no leading dot); types without rules are absent. */
export type RuleBook = ReadonlyMap<string, MessageRules>;

const NUMERIC_KINDS = new Set([
  "double",
  "float",
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
]);
const RULE_KEY = /^\(validate\.rules\)\.(\w+)\.(\w+)$/;

/** Collects the rules of every message below `ns`. */
export function extractRules(ns: protobuf.NamespaceBase, book = new Map<string, MessageRules>()): RuleBook {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) {
      const rules = messageRules(nested);
      if (rules !== undefined) book.set(nested.fullName.replace(/^\./, ""), rules);
    }
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) extractRules(nested, book);
  }
  return book;
}

function messageRules(type: protobuf.Type): MessageRules | undefined {
  const fields = new Map<string, FieldRules>();
  for (const field of type.fieldsArray) {
    const rules = fieldRules(field.options ?? {});
    if (rules !== undefined) fields.set(field.name, rules);
  }
  const requiredOneofs = new Set(
    type.oneofsArray.filter((o) => o.options?.["(validate.required)"] === true).map((o) => o.name),
  );
  return fields.size === 0 && requiredOneofs.size === 0 ? undefined : { fields, requiredOneofs };
}

function fieldRules(options: Readonly<Record<string, unknown>>): FieldRules | undefined {
  let found = false;
  const bounds: { gt?: number; gte?: number; lt?: number; lte?: number } = {};
  const flags = { required: false, definedOnly: false, ignoreEmpty: false };
  const sizes: Record<string, number | undefined> = {};
  for (const [key, value] of Object.entries(options)) {
    const match = RULE_KEY.exec(key);
    if (match === null) continue;
    const [, kind = "", rule = ""] = match;
    if (rule === "required" && value === true) flags.required = true;
    else if (rule === "defined_only" && value === true) flags.definedOnly = true;
    else if (rule === "ignore_empty" && value === true) flags.ignoreEmpty = true;
    else if (typeof value !== "number") continue;
    else if ((kind === "string" || kind === "bytes") && rule === "min_len") sizes.minLen = value;
    else if (kind === "repeated" && (rule === "min_items" || rule === "max_items")) sizes[rule] = value;
    else if (kind === "map" && rule === "min_pairs") sizes.minPairs = value;
    else if (
      NUMERIC_KINDS.has(kind) &&
      (rule === "gt" || rule === "gte" || rule === "lt" || rule === "lte")
    ) {
      bounds[rule] = value;
    } else continue;
    found = true;
  }
  if (!found) return undefined;
  return {
    ...flags,
    minLen: sizes.minLen,
    minItems: sizes.min_items,
    maxItems: sizes.max_items,
    minPairs: sizes.minPairs,
    bounds: Object.keys(bounds).length > 0 ? bounds : undefined,
  };
}
