import { describe, expect, it } from "vitest";
import { hasRetryLeft, normalizeRetryPolicy, retryCeilingMs, retryDelayMs } from "./retry-policy.js";

describe("retry policy", () => {
  it("defaults to 3 retries, 10s base, 10m cap, full jitter", () => {
    expect(normalizeRetryPolicy(undefined)).toEqual({
      policy: { maxRetries: 3, baseMs: 10_000, capMs: 600_000, jitter: "FULL" },
      problems: [],
    });
  });

  it("names every out-of-range field", () => {
    const { problems } = normalizeRetryPolicy({ maxRetries: 21, baseMs: 500, capMs: 100 });
    expect(problems.map(([f]) => f)).toEqual(["max_retries", "backoff_base", "backoff_cap"]);
  });

  it("doubles up to the cap", () => {
    const p = normalizeRetryPolicy({ maxRetries: 5, baseMs: 1_000, capMs: 5_000 }).policy;
    expect([1, 2, 3, 4, 5].map((n) => retryCeilingMs(p, n))).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });

  it("draws full jitter within [0, ceiling] and none exactly", () => {
    const p = normalizeRetryPolicy({ maxRetries: 5, baseMs: 1_000, capMs: 5_000 }).policy;
    expect(retryDelayMs(p, 2, () => 0)).toBe(0);
    expect(retryDelayMs(p, 2, () => 0.999_999)).toBeLessThanOrEqual(2_000);
    for (let i = 0; i < 1_000; i++) {
      const d = retryDelayMs(p, 3);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(4_000);
    }
    expect(retryDelayMs({ ...p, jitter: "NONE" }, 3)).toBe(4_000);
  });

  it("allows max_retries further runs after the first", () => {
    const p = normalizeRetryPolicy({ maxRetries: 2, baseMs: 1_000, capMs: 1_000 }).policy;
    expect([1, 2, 3].map((f) => hasRetryLeft(p, f))).toEqual([true, true, false]);
  });
});
