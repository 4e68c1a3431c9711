/**
 * How a handler's return value or exception becomes the run's completion. Pure, so the rules
 * are tested on their own:
 *
 * - returned → SUCCEEDED, unless the result names another status;
 * - thrown → FAILED with the error's message (a RunFailure also gives its exit code);
 * - cancellation requested → CANCELLED whatever happened, keeping the exit code, with the
 *   cancel reason as error when the handler gave none.
 * Errors are cut to the contract's 4 KiB.
 */
import { RunState } from "../gen/codex/agentmanager/v1/run_pb.js";
import { RunFailure, type RunResult } from "./types.js";

export interface Completion {
  status: RunState.SUCCEEDED | RunState.FAILED | RunState.CANCELLED;
  exitCode?: number;
  error: string;
}

const MAX_ERROR_BYTES = 4096;

const STATUS = {
  SUCCEEDED: RunState.SUCCEEDED,
  FAILED: RunState.FAILED,
  CANCELLED: RunState.CANCELLED,
} as const;

export function completionOf(
  outcome: { returned: RunResult | undefined } | { thrown: unknown },
  cancelReason: string | undefined,
): Completion {
  let c: Completion;
  if ("returned" in outcome) {
    const r = outcome.returned ?? {};
    c = { status: STATUS[r.status ?? "SUCCEEDED"], error: r.error ?? "" };
    if (r.exitCode !== undefined) c.exitCode = r.exitCode;
  } else {
    const err = outcome.thrown;
    c = { status: RunState.FAILED, error: err instanceof Error ? err.message : String(err) };
    if (err instanceof RunFailure && err.exitCode !== undefined) c.exitCode = err.exitCode;
    if (c.error === "") c.error = "handler failed";
  }
  if (cancelReason !== undefined) {
    c.status = RunState.CANCELLED;
    if (c.error === "") c.error = cancelReason || "cancelled";
  }
  c.error = truncateUtf8(c.error, MAX_ERROR_BYTES);
  return c;
}

/** Cuts a string to at most `max` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, max: number): string {
  const buf = Buffer.from(s, "utf8");
  if (buf.length <= max) return s;
  let end = max - 3;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return `${buf.subarray(0, end).toString("utf8")}...`;
}
