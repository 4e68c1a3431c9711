import { isAlias, isMap, isScalar } from "yaml";
import { parseTimeout } from "./duration.js";
import {
  describeValue,
  offsetOf,
  type ReadContext,
  readEnv,
  readRequiredString,
  readStrictMap,
  readString,
} from "./fields.js";
import { childKey } from "./path.js";
import type { Step } from "./types.js";

const STEP_KEYS = ["run", "env", "timeout", "cwd"] as const;

export type CwdResult =
  | { readonly ok: true; readonly cwd: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Checks that a step's working directory stays inside the run's workspace, and normalises it
 * (`./a//b/` → `a/b`, `./` → `.`) so equivalent recipes hash alike. Backslashes and drive
 * letters are refused too: agents may run on Windows, where they would escape the workspace.
 */
export function normaliseCwd(raw: string): CwdResult {
  if (raw.includes("\0")) return { ok: false, reason: "must not contain NUL characters" };
  if (raw.includes("\\")) return { ok: false, reason: 'must use "/" as the path separator' };
  if (raw.startsWith("/") || /^[A-Za-z]:/.test(raw)) {
    return { ok: false, reason: "must be relative to the workspace, not absolute" };
  }
  if (raw.startsWith("~"))
    return { ok: false, reason: "must be relative to the workspace (~ is not expanded)" };
  const segments = raw.split("/");
  if (segments.includes(".."))
    return { ok: false, reason: 'must not contain ".."; steps stay inside the workspace' };
  return { ok: true, cwd: segments.filter((s) => s !== "" && s !== ".").join("/") || "." };
}

/** Reads one entry of `steps:`: a shell string, or a map with `run` and optional settings. */
export function readStep(
  ctx: ReadContext,
  node: unknown,
  path: string,
  fallbackOffset: number,
): Step | undefined {
  if (isAlias(node)) return undefined;
  const at = offsetOf(node, fallbackOffset);
  if (isScalar(node) && typeof node.value === "string") {
    const run = readString(ctx, node, path, at, { nonEmpty: true });
    return run === undefined ? undefined : { run, env: {} };
  }
  if (!isMap(node)) {
    const hint = isScalar(node) && node.value !== null ? " (quote it to run it as a command)" : "";
    ctx.problems.add(
      path,
      at,
      `a step is a shell command string or a map with "run", got ${describeValue(node)}${hint}`,
    );
    return undefined;
  }
  const fields = readStrictMap(ctx, node, path, STEP_KEYS, at);
  if (!fields) return undefined;

  const run = readRequiredString(ctx, fields, path, "run", at, { nonEmpty: true });
  const envEntry = fields.get("env");
  const env = envEntry ? readEnv(ctx, envEntry.value, childKey(path, "env"), envEntry.keyOffset) : {};

  let valid = run !== undefined && env !== undefined;
  const step: { run: string; env: Record<string, string>; timeoutMs?: number; cwd?: string } = {
    run: run ?? "",
    env: env ?? {},
  };

  const timeout = fields.get("timeout");
  if (timeout && !isAlias(timeout.value)) {
    const value = isScalar(timeout.value) ? timeout.value.value : undefined;
    const parsed = parseTimeout(value, ctx.limits.maxTimeoutMs);
    if (parsed.ok) step.timeoutMs = parsed.ms;
    else {
      ctx.problems.add(childKey(path, "timeout"), offsetOf(timeout.value, timeout.keyOffset), parsed.reason);
      valid = false;
    }
  }

  const cwdEntry = fields.get("cwd");
  if (cwdEntry) {
    const raw = readString(ctx, cwdEntry.value, childKey(path, "cwd"), cwdEntry.keyOffset, {
      nonEmpty: true,
    });
    const cwd = raw === undefined ? undefined : normaliseCwd(raw);
    if (cwd?.ok) step.cwd = cwd.cwd;
    else {
      if (cwd)
        ctx.problems.add(childKey(path, "cwd"), offsetOf(cwdEntry.value, cwdEntry.keyOffset), cwd.reason);
      valid = false;
    }
  }
  return valid ? step : undefined;
}
