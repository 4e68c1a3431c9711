import { backoffDelay } from "../../../mesh/resilience/retry.js";

/**
 * What happens after a delivery attempt. Pure, with randomness injected.
 *
 * Per the Subscription contract: 2xx (or an accepted SMTP message) succeeds; timeouts, network
 * errors, HTTP 408, 429 and 5xx, and SMTP 4xx are retried with exponential backoff and full
 * jitter; other answers are final. `Retry-After` is honoured as a lower bound on the delay.
 */
export interface RetryPolicy {
  /** Attempts per series (a redelivery starts a new series), first one included. */
  maxAttempts: number;
  baseMs: number;
  capMs: number;
}

/** How an attempt ended, as the channel saw it. */
export interface AttemptResult {
  ok: boolean;
  /** HTTP status or SMTP reply code; 0 when no answer arrived. */
  statusCode: number;
  /** Why it failed (never a secret, response body already truncated); "" on success. */
  error: string;
  /** Whether trying again may help. */
  retryable: boolean;
  /** Delay the receiver asked for (Retry-After), if any. */
  retryAfterMs?: number | undefined;
}

export type NextStep =
  | { kind: "succeeded" }
  | { kind: "retry"; delayMs: number }
  | { kind: "dead_letter"; reason: "attempts_exhausted" | "not_retryable" };

/** Retry-After values above this are clamped: a receiver must not park a delivery for days. */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/** Decides the next step after attempt number `attemptInSeries` (1-based) of a series. */
export function nextStep(
  policy: RetryPolicy,
  attemptInSeries: number,
  result: AttemptResult,
  random: () => number = Math.random,
): NextStep {
  if (result.ok) return { kind: "succeeded" };
  if (!result.retryable) return { kind: "dead_letter", reason: "not_retryable" };
  if (attemptInSeries >= policy.maxAttempts) return { kind: "dead_letter", reason: "attempts_exhausted" };
  const jittered = backoffDelay(attemptInSeries - 1, policy.baseMs, policy.capMs, random);
  const asked = Math.min(result.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS);
  return { kind: "retry", delayMs: Math.round(Math.max(jittered, asked)) };
}

/** Whether an HTTP status means success, a retryable failure, or a final one. */
export function classifyHttpStatus(status: number): "success" | "retryable" | "final" {
  if (status >= 200 && status < 300) return "success";
  if (status === 408 || status === 429 || status >= 500) return "retryable";
  return "final";
}

/** SMTP: 2xx accepted, 4xx transient (retry), 5xx permanent. */
export function classifySmtpCode(code: number): "success" | "retryable" | "final" {
  if (code >= 200 && code < 300) return "success";
  if (code >= 400 && code < 500) return "retryable";
  return code >= 500 ? "final" : "retryable";
}

/** Parses `Retry-After` (delta seconds or an HTTP date) into milliseconds from `now`. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Error text as stored on a Delivery: single line, at most 1,000 characters. */
export function clipError(text: string): string {
  const one = text.replace(/[\r\n]+/g, " ");
  return one.length > 1000 ? `${one.slice(0, 997)}...` : one;
}

/** The part of a response body kept in an error: its first 200 characters. */
export function bodySnippet(body: string): string {
  return body.length > 200 ? `${body.slice(0, 200)}…` : body;
}
