import {
  offsetOf,
  type ReadContext,
  readBoolean,
  readEnv,
  readRequiredString,
  readStrictMap,
} from "./fields.js";
import { childKey } from "./path.js";
import { quote } from "./problems.js";
import type { Tool } from "./types.js";

const TOOL_KEYS = ["name", "version", "checksum", "env", "network"] as const;

/** Tool names become directory and package names on agents, hence the conservative alphabet. */
export const TOOL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;
/** Lowercase only, so one digest has one spelling (and a recipe one canonical hash). */
export const TOOL_CHECKSUM = /^sha256:[0-9a-f]{64}$/;

function checksumMismatch(value: string): string {
  return TOOL_CHECKSUM.test(value.toLowerCase())
    ? "hex digits must be lowercase"
    : `must be "sha256:" followed by 64 lowercase hex digits, got ${quote(value)}`;
}

/**
 * Reads one entry of `tools:`. Every field is checked even after the first problem, so one
 * upload shows the author everything to fix; the tool is returned only if all are valid.
 */
export function readTool(
  ctx: ReadContext,
  node: unknown,
  path: string,
  fallbackOffset: number,
): Tool | undefined {
  const fields = readStrictMap(ctx, node, path, TOOL_KEYS, fallbackOffset);
  if (!fields) return undefined;
  const at = offsetOf(node, fallbackOffset);

  const name = readRequiredString(ctx, fields, path, "name", at, {
    nonEmpty: true,
    pattern: TOOL_NAME,
    mismatch: (v) =>
      `${quote(v)} is not a valid tool name: up to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
  });
  const version = readRequiredString(ctx, fields, path, "version", at, {
    nonEmpty: true,
    quoteHint: "quote it (unquoted 1.10 is the number 1.1 in YAML)",
  });
  const checksum = readRequiredString(ctx, fields, path, "checksum", at, {
    pattern: TOOL_CHECKSUM,
    mismatch: checksumMismatch,
  });

  const envEntry = fields.get("env");
  const env = envEntry ? readEnv(ctx, envEntry.value, childKey(path, "env"), envEntry.keyOffset) : {};
  const networkEntry = fields.get("network");
  const network = networkEntry
    ? readBoolean(ctx, networkEntry.value, childKey(path, "network"), networkEntry.keyOffset)
    : false;

  if (name === undefined || version === undefined || checksum === undefined) return undefined;
  if (env === undefined || network === undefined) return undefined;
  return { name, version, checksum, env, network };
}
