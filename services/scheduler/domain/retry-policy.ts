import { backoffDelay } from "../../../mesh/resilience/retry.js";

/** A retry policy with every default applied, in milliseconds. */
export interface RetryPolicyValues {
  maxRetries: number;
  baseMs: number;
  capMs: number;
  jitter: "FULL" | "NONE";
}

/** What the contract allows (task.proto RetryPolicy). */
export const RETRY_LIMITS = {
  maxRetries: { min: 0, max: 20, default: 3 },
  baseMs: { min: 1_000, max: 3_600_000, default: 10_000 },
  capMs: { max: 24 * 3_600_000, default: 600_000 },
} as const;

/** The policy as received: unset fields are undefined. */
export interface RetryPolicyInput {
  maxRetries?: number | undefined;
  baseMs?: number | undefined;
  capMs?: number | undefined;
  jitter?: "FULL" | "NONE" | undefined;
}

/**
 * Applies the defaults and checks the ranges; returns the problems as [field, description]
 * pairs (field relative to the policy, e.g. "backoff_cap") rather than throwing, so callers
 * can report them under their own path. A proto3 int32 cannot be "unset", so max_retries is
 * only defaulted when the whole policy is absent.
 */
export function normalizeRetryPolicy(input: RetryPolicyInput | undefined): {
  policy: RetryPolicyValues;
  problems: [string, string][];
} {
  const problems: [string, string][] = [];
  const maxRetries = input === undefined ? RETRY_LIMITS.maxRetries.default : (input.maxRetries ?? 0);
  const baseMs = input?.baseMs ?? RETRY_LIMITS.baseMs.default;
  const capMs = input?.capMs ?? Math.max(RETRY_LIMITS.capMs.default, baseMs);
  if (!Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > RETRY_LIMITS.maxRetries.max) {
    problems.push(["max_retries", `must be 0-${RETRY_LIMITS.maxRetries.max}`]);
  }
  if (baseMs < RETRY_LIMITS.baseMs.min || baseMs > RETRY_LIMITS.baseMs.max) {
    problems.push(["backoff_base", "must be between 1s and 1h"]);
  }
  if (capMs < baseMs || capMs > RETRY_LIMITS.capMs.max) {
    problems.push(["backoff_cap", "must be at least backoff_base and at most 24h"]);
  }
  return { policy: { maxRetries, baseMs, capMs, jitter: input?.jitter ?? "FULL" }, problems };
}

/** The largest delay before retry `n` (1-based): min(cap, base * 2^(n-1)). */
export function retryCeilingMs(policy: RetryPolicyValues, n: number): number {
  return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(n - 1, 0), 60));
}

/**
 * The delay before retry `n` (1-based): the ceiling itself without jitter, uniform in
 * [0, ceiling] with FULL jitter (spreads retries of many tasks that failed together).
 */
export function retryDelayMs(
  policy: RetryPolicyValues,
  n: number,
  random: () => number = Math.random,
): number {
  if (policy.jitter === "NONE") return retryCeilingMs(policy, n);
  return Math.round(backoffDelay(n - 1, policy.baseMs, policy.capMs, random));
}

/** Whether another run may follow `failuresSoFar` failed runs (since the last requeue). */
export function hasRetryLeft(policy: RetryPolicyValues, failuresSoFar: number): boolean {
  return failuresSoFar <= policy.maxRetries;
}
