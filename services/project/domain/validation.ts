import { type FieldViolation, invalidArgument } from "../../../mesh/errors.js";
import { LABEL_KEY, LABEL_VALUE, LIMITS, PROJECT_NAME, UUID } from "./limits.js";

/**
 * Collects every bad field of a request before failing, so a caller fixes all of them in
 * one round trip instead of discovering them one at a time. Field paths use the proto
 * field names (`project.display_name`, `labels["Key"]`), as google.rpc.BadRequest expects.
 */
export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, description: string): this {
    this.list.push({ field, description });
    return this;
  }

  get any(): boolean {
    return this.list.length > 0;
  }

  get items(): readonly FieldViolation[] {
    return this.list;
  }

  /** Throws INVALID_ARGUMENT listing every violation, if there is one. */
  throwIfAny(message = "invalid request"): void {
    if (this.list.length === 0) return;
    const fields = [...new Set(this.list.map((v) => v.field))].join(", ");
    throw invalidArgument(`${message}: ${fields}`, this.list);
  }

  /** A required, well-formed id (UUID). */
  uuid(field: string, value: string): this {
    if (value === "") return this.add(field, "is required");
    if (!UUID.test(value)) this.add(field, "must be a UUID");
    return this;
  }

  /** An optional idempotency key: empty, or a UUID. */
  requestId(field: string, value: string): this {
    if (value !== "" && !UUID.test(value)) this.add(field, "must be a UUID when set");
    return this;
  }

  /** Length in characters (code points), within [min, max]. */
  length(field: string, value: string, min: number, max: number): this {
    const n = codePoints(value);
    if (n < min) this.add(field, min === 1 ? "is required" : `must be at least ${min} characters`);
    else if (n > max) this.add(field, `must be at most ${max} characters`);
    return this;
  }

  /** A proto enum value known to the generated code and not UNSPECIFIED (unless allowed). */
  enumValue(field: string, value: number, known: readonly number[], allowUnspecified: boolean): this {
    if (value === 0 && !allowUnspecified) return this.add(field, "is required");
    if (value !== 0 && !known.includes(value)) this.add(field, `unknown value ${value}`);
    return this;
  }

  /** page_size: negative values are refused, larger ones are clamped by the caller. */
  pageSize(value: number): this {
    if (value < 0) this.add("page_size", "must not be negative");
    return this;
  }
}

/** String length as users count it (a surrogate pair is one character). */
export function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Project slug rules: 3–63 characters, lower-case letter first, no trailing hyphen. */
export function checkProjectName(v: Violations, field: string, name: string): void {
  if (name === "") {
    v.add(field, "is required");
    return;
  }
  if (name.length < LIMITS.nameMin || name.length > LIMITS.nameMax) {
    v.add(field, `must be ${LIMITS.nameMin}-${LIMITS.nameMax} characters`);
  } else if (!PROJECT_NAME.test(name)) {
    v.add(field, "must match ^[a-z][a-z0-9-]*[a-z0-9]$ (lower-case letters, digits, hyphens)");
  }
}

/** Label map rules: at most 64 entries, each key and value checked and named in the path. */
export function checkLabels(v: Violations, field: string, labels: Record<string, string>): void {
  const keys = Object.keys(labels);
  if (keys.length > LIMITS.labelsMax) v.add(field, `must have at most ${LIMITS.labelsMax} entries`);
  for (const key of keys) {
    const value = labels[key] ?? "";
    const path = `${field}[${JSON.stringify(key)}]`;
    if (key.length < 1 || key.length > LIMITS.labelKeyMax || !LABEL_KEY.test(key)) {
      v.add(path, "key must be 1-63 characters matching ^[a-z][a-z0-9_-]*$");
    }
    if (value.length > LIMITS.labelValueMax || !LABEL_VALUE.test(value)) {
      v.add(path, "value must be at most 63 characters of [a-z0-9_-]");
    }
  }
}
