import { createHash } from "node:crypto";

/**
 * Digests of JSON-shaped values: what page tokens bind to (the list's filters) and what request
 * ids are compared by (the request's content).
 *
 * Why one function with options rather than one fixed recipe: fingerprints outlive a deploy —
 * they sit inside page tokens clients hold and beside request ids kept for 24 hours — so a
 * service that released one recipe must keep computing exactly that one. The defaults are what
 * new code should use; the options only reproduce recipes already released.
 */
export interface FingerprintOptions {
  /**
   * `sorted` (default): object keys sorted at every level ({@link stableJson}), so equal values
   * built in another order (e.g. protobuf maps) give the same digest. `as-given`:
   * `JSON.stringify` order, bigints as decimal strings.
   */
  keyOrder?: "sorted" | "as-given";
  /** Text of the SHA-256 digest; default `base64url`. */
  encoding?: "base64url" | "hex";
  /** Keep only the first `length` characters (page tokens use 16); default: the whole digest. */
  length?: number;
}

/** SHA-256 of `value`'s canonical JSON, as text. */
export function fingerprint(value: unknown, options: FingerprintOptions = {}): string {
  const json = options.keyOrder === "as-given" ? givenOrderJson(value) : stableJson(value);
  const digest = createHash("sha256")
    .update(json)
    .digest(options.encoding ?? "base64url");
  return options.length === undefined ? digest : digest.slice(0, options.length);
}

/**
 * JSON with object keys sorted at every level and `undefined` members dropped, so equal values
 * always serialize to the same text. bigints become decimal strings; objects with `toJSON`
 * (Date) serialize as `JSON.stringify` would.
 */
export function stableJson(value: unknown): string {
  if (hasToJson(value)) return stableJson(value.toJSON());
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(typeof value === "bigint" ? value.toString() : value) ?? "null";
}

function givenOrderJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) ?? "null";
}

function hasToJson(value: unknown): value is { toJSON(): unknown } {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof (value as { toJSON?: unknown }).toJSON === "function"
  );
}
