import { describe, expect, it } from "vitest";
import { type AttemptResult, classifyHttpStatus, nextStep, parseRetryAfter } from "./retry-policy.js";

const policy = { maxAttempts: 4, baseMs: 100, capMs: 1_000 };
const fail = (over: Partial<AttemptResult> = {}): AttemptResult => ({
  ok: false,
  statusCode: 503,
  error: "HTTP 503",
  retryable: true,
  ...over,
});

describe("retry policy", () => {
  it("backs off exponentially with full jitter, capped", () => {
    expect(nextStep(policy, 1, fail(), () => 0.999)).toEqual({ kind: "retry", delayMs: 100 });
    expect(nextStep(policy, 3, fail(), () => 0.999)).toEqual({ kind: "retry", delayMs: 400 });
    expect(nextStep({ ...policy, maxAttempts: 20 }, 10, fail(), () => 0.5)).toEqual({
      kind: "retry",
      delayMs: 500,
    });
    expect(nextStep(policy, 1, fail(), () => 0)).toEqual({ kind: "retry", delayMs: 0 });
  });

  it("dead-letters after the last attempt or on a final answer", () => {
    expect(nextStep(policy, 4, fail())).toEqual({ kind: "dead_letter", reason: "attempts_exhausted" });
    expect(nextStep(policy, 1, fail({ statusCode: 404, retryable: false }))).toEqual({
      kind: "dead_letter",
      reason: "not_retryable",
    });
    expect(nextStep(policy, 1, { ok: true, statusCode: 200, error: "", retryable: false })).toEqual({
      kind: "succeeded",
    });
  });

  it("honours Retry-After as a lower bound", () => {
    expect(nextStep(policy, 1, fail({ retryAfterMs: 5_000 }), () => 0.5)).toEqual({
      kind: "retry",
      delayMs: 5_000,
    });
    expect(parseRetryAfter("7")).toBe(7_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
  });

  it("classifies HTTP answers per the contract", () => {
    expect([200, 204, 408, 429, 500, 503, 400, 404, 410, 301].map(classifyHttpStatus)).toEqual([
      "success",
      "success",
      "retryable",
      "retryable",
      "retryable",
      "retryable",
      "final",
      "final",
      "final",
      "final",
    ]);
  });
});
