import { isAlias, isMap, isNode, isScalar, isSeq, type Scalar } from "yaml";
import type { RecipeLimits } from "./limits.js";
import { childKey } from "./path.js";
import { type ProblemCollector, quote } from "./problems.js";

/** What every reader needs: where to put problems and which limits apply. */
export interface ReadContext {
  readonly problems: ProblemCollector;
  readonly limits: RecipeLimits;
}

/** A map entry with the key node kept, so problems can point at the key itself. */
export interface Entry {
  readonly keyOffset: number;
  readonly value: unknown;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Start offset of a YAML node, for problem positions. */
export function offsetOf(node: unknown, fallback: number): number {
  return isNode(node) && node.range ? node.range[0] : fallback;
}

/** How a wrong value is described back to the author. */
export function describeValue(node: unknown): string {
  if (isMap(node)) return "a map";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return "nothing (null)";
    if (typeof v === "string") return `the string ${quote(v)}`;
    return `the ${typeof v} ${String(v)}`;
  }
  return "nothing";
}

/**
 * Reads a map whose keys are fixed by the recipe format. Every key outside `allowed`
 * is a problem: a misspelt `timout` must not silently fall back to the default.
 * Aliases return `undefined` silently; the CST scan has already refused them.
 */
export function readStrictMap(
  ctx: ReadContext,
  node: unknown,
  path: string,
  allowed: readonly string[],
  fallbackOffset: number,
): Map<string, Entry> | undefined {
  if (isAlias(node)) return undefined;
  if (!isMap(node)) {
    ctx.problems.add(path, offsetOf(node, fallbackOffset), `must be a map, got ${describeValue(node)}`);
    return undefined;
  }
  const entries = new Map<string, Entry>();
  for (const pair of node.items) {
    const keyOffset = offsetOf(pair.key, offsetOf(node, fallbackOffset));
    if (!isScalar(pair.key) || typeof pair.key.value !== "string") {
      ctx.problems.add(path, keyOffset, `keys must be strings, got ${describeValue(pair.key)}`);
      continue;
    }
    const key = pair.key.value;
    if (!allowed.includes(key)) {
      ctx.problems.add(
        childKey(path, key),
        keyOffset,
        `unknown key ${quote(key)}; expected one of: ${allowed.join(", ")}`,
      );
      continue;
    }
    entries.set(key, { keyOffset, value: pair.value });
  }
  return entries;
}

/** Options for {@link readString}. */
export interface StringRules {
  readonly nonEmpty?: boolean;
  /** Replaces the generic "quote it" advice for values YAML resolved to numbers or booleans. */
  readonly quoteHint?: string;
  /** A shape the value must have, with the message explaining it when it does not. */
  readonly pattern?: RegExp;
  readonly mismatch?: (value: string) => string;
}

/** Reads a string scalar, refusing numbers and booleans that YAML resolved from plain text. */
export function readString(
  ctx: ReadContext,
  node: unknown,
  path: string,
  fallbackOffset: number,
  rules: StringRules = {},
): string | undefined {
  if (isAlias(node)) return undefined;
  const offset = offsetOf(node, fallbackOffset);
  if (!isScalar(node) || typeof node.value !== "string") {
    const hint = isScalar(node) && node.value !== null ? `; ${rules.quoteHint ?? "quote it"}` : "";
    ctx.problems.add(path, offset, `must be a string, got ${describeValue(node)}${hint}`);
    return undefined;
  }
  const value = checkedString(ctx, node, path, rules.nonEmpty === true);
  if (value !== undefined && rules.pattern && !rules.pattern.test(value)) {
    ctx.problems.add(path, offset, rules.mismatch?.(value) ?? `must match ${rules.pattern.source}`);
    return undefined;
  }
  return value;
}

/** Reads a key that must be present in `fields`, reporting its absence at the map itself. */
export function readRequiredString(
  ctx: ReadContext,
  fields: ReadonlyMap<string, Entry>,
  mapPath: string,
  key: string,
  mapOffset: number,
  rules: StringRules = {},
): string | undefined {
  const entry = fields.get(key);
  if (!entry) {
    ctx.problems.add(childKey(mapPath, key), mapOffset, "is required");
    return undefined;
  }
  return readString(ctx, entry.value, childKey(mapPath, key), entry.keyOffset, rules);
}

function checkedString(ctx: ReadContext, node: Scalar, path: string, nonEmpty: boolean): string | undefined {
  const value = String(node.value);
  const offset = offsetOf(node, 0);
  if (Buffer.byteLength(value, "utf8") > ctx.limits.maxStringBytes) {
    ctx.problems.add(path, offset, `is longer than ${ctx.limits.maxStringBytes} bytes`);
    return undefined;
  }
  if (nonEmpty && value.trim() === "") {
    ctx.problems.add(path, offset, "must not be empty");
    return undefined;
  }
  return value;
}

/** Reads a boolean; `"true"` or `yes` (strings in YAML 1.2) are refused rather than guessed. */
export function readBoolean(
  ctx: ReadContext,
  node: unknown,
  path: string,
  fallbackOffset: number,
): boolean | undefined {
  if (isAlias(node)) return undefined;
  if (isScalar(node) && typeof node.value === "boolean") return node.value;
  ctx.problems.add(path, offsetOf(node, fallbackOffset), `must be true or false, got ${describeValue(node)}`);
  return undefined;
}

/**
 * Reads an environment map. Values must already be strings: YAML would turn `PORT: 08`
 * into a string but `PORT: 8` into a number and `DEBUG: yes`/`true` inconsistently, so the
 * author is asked to quote rather than have us stringify and surprise them.
 * Built with `Object.fromEntries` so a variable named `__proto__` stays an ordinary entry.
 */
export function readEnv(
  ctx: ReadContext,
  node: unknown,
  path: string,
  fallbackOffset: number,
): Record<string, string> | undefined {
  if (isAlias(node)) return undefined;
  if (!isMap(node)) {
    ctx.problems.add(
      path,
      offsetOf(node, fallbackOffset),
      `must be a map of names to strings, got ${describeValue(node)}`,
    );
    return undefined;
  }
  const entries: [string, string][] = [];
  let valid = true;
  for (const pair of node.items) {
    const keyOffset = offsetOf(pair.key, offsetOf(node, fallbackOffset));
    if (!isScalar(pair.key) || typeof pair.key.value !== "string" || !ENV_NAME.test(pair.key.value)) {
      const shown = isScalar(pair.key) ? quote(String(pair.key.value)) : describeValue(pair.key);
      ctx.problems.add(path, keyOffset, `environment variable name ${shown} must match ${ENV_NAME.source}`);
      valid = false;
      continue;
    }
    const name = pair.key.value;
    const namePath = childKey(path, name);
    if (name.length > ctx.limits.maxStringBytes) {
      ctx.problems.add(namePath, keyOffset, `is longer than ${ctx.limits.maxStringBytes} bytes`);
      valid = false;
      continue;
    }
    if (isAlias(pair.value)) continue;
    if (!isScalar(pair.value) || typeof pair.value.value !== "string") {
      const msg = isScalar(pair.value)
        ? `env values must be strings; quote them (got ${describeValue(pair.value)})`
        : `env values must be strings, got ${describeValue(pair.value)}`;
      ctx.problems.add(namePath, offsetOf(pair.value, keyOffset), msg);
      valid = false;
      continue;
    }
    const value = checkedString(ctx, pair.value, namePath, false);
    if (value === undefined) valid = false;
    else entries.push([name, value]);
  }
  return valid ? Object.fromEntries(entries) : undefined;
}
