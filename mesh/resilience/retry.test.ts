import { describe, expect, it } from "vitest";
import { backoffDelay, type RetryEvent, retry } from "./retry.js";

class Unavailable extends Error {
  constructor(readonly retryAfterMs?: number) {
    super("unavailable");
  }
}
const isUnavailable = (e: unknown) => e instanceof Unavailable;

/** A deterministic pseudo-random source (mulberry32) so the property test is reproducible. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("backoffDelay", () => {
  it("stays within [0, min(cap, base·2^attempt)) for many attempts, bases and caps", () => {
    const random = seeded(42);
    for (let i = 0; i < 20_000; i++) {
      const attempt = Math.floor(random() * 2000);
      const base = Math.floor(random() * 1000);
      const cap = Math.floor(random() * 60_000);
      const d = backoffDelay(attempt, base, cap, random);
      const ceiling = base === 0 ? 0 : Math.min(cap, base * 2 ** attempt);
      expect(Number.isFinite(d), `attempt ${attempt} base ${base}`).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(ceiling);
      if (ceiling > 0) expect(d).toBeLessThan(ceiling);
    }
  });

  it("grows exponentially until the cap, and spans the whole range (full jitter)", () => {
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, 100, 1000, () => 0.999_999))).toEqual(
      [100, 200, 400, 800, 1000, 1000].map((c) => c * 0.999_999),
    );
    expect(backoffDelay(3, 100, 1000, () => 0)).toBe(0);
    expect(backoffDelay(3, 100, 1000, () => 0.5)).toBe(400);
    // Uniform: over many draws at the cap, the mean is about half the cap and both ends are reached.
    const random = seeded(7);
    const draws = Array.from({ length: 10_000 }, () => backoffDelay(30, 50, 2000, random));
    const mean = draws.reduce((s, d) => s + d, 0) / draws.length;
    expect(mean).toBeGreaterThan(950);
    expect(mean).toBeLessThan(1050);
    expect(Math.min(...draws)).toBeLessThan(20);
    expect(Math.max(...draws)).toBeGreaterThan(1980);
  });

  it("never yields NaN for extreme or zero inputs", () => {
    expect(backoffDelay(5000, 0, 1000, () => 0.5)).toBe(0);
    expect(backoffDelay(5000, 10, 1000, () => 0.5)).toBe(500);
    expect(backoffDelay(-3, 10, 1000, () => 0.5)).toBe(5);
  });
});

describe("retry", () => {
  const fast = { baseMs: 1, capMs: 5 };

  it("retries retryable errors until success, passing the attempt number", async () => {
    const seen: number[] = [];
    const events: RetryEvent[] = [];
    const result = await retry(
      async (attempt) => {
        seen.push(attempt);
        if (attempt < 3) throw new Unavailable();
        return "ok";
      },
      { ...fast, maxAttempts: 5, isRetryable: isUnavailable, onRetry: (e) => events.push(e) },
    );
    expect(result).toBe("ok");
    expect(seen).toEqual([1, 2, 3]);
    expect(events.map((e) => e.attempt)).toEqual([1, 2]);
    expect(events.every((e) => e.delayMs >= 0 && e.delayMs < 5 && !e.serverDelay)).toBe(true);
  });

  it("stops at maxAttempts and rethrows the last error unchanged", async () => {
    let calls = 0;
    const last = new Unavailable();
    const err = await retry(
      async () => {
        calls++;
        throw calls === 3 ? last : new Unavailable();
      },
      { ...fast, maxAttempts: 3, isRetryable: isUnavailable },
    ).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(err).toBe(last);
  });

  it("does not retry errors isRetryable refuses", async () => {
    let calls = 0;
    const invalid = new Error("INVALID_ARGUMENT");
    await expect(
      retry(
        async () => {
          calls++;
          throw invalid;
        },
        { ...fast, maxAttempts: 5, isRetryable: isUnavailable },
      ),
    ).rejects.toBe(invalid);
    expect(calls).toBe(1);
  });

  it("honours a server-provided retryAfterMs instead of the computed backoff", async () => {
    const events: RetryEvent[] = [];
    const started = Date.now();
    let calls = 0;
    await retry(
      async () => {
        if (++calls === 1) throw new Unavailable(60);
        return calls;
      },
      { maxAttempts: 2, baseMs: 1, capMs: 1, isRetryable: isUnavailable, onRetry: (e) => events.push(e) },
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(55);
    expect(events).toMatchObject([{ attempt: 1, delayMs: 60, serverDelay: true }]);
  });

  it("reads retryAfterMs from a getter as well (as mesh ServiceError exposes it)", async () => {
    class WithGetter extends Error {
      get retryAfterMs() {
        return 7;
      }
    }
    const events: RetryEvent[] = [];
    await expect(
      retry(
        async () => {
          throw new WithGetter("x");
        },
        { ...fast, maxAttempts: 2, isRetryable: () => true, onRetry: (e) => events.push(e) },
      ),
    ).rejects.toBeInstanceOf(WithGetter);
    expect(events[0]?.delayMs).toBe(7);
  });

  it("stops waiting when the signal aborts, rejecting with its reason", async () => {
    const ac = new AbortController();
    let calls = 0;
    const started = Date.now();
    setTimeout(() => ac.abort(new Error("caller gave up")), 20);
    await expect(
      retry(
        async () => {
          calls++;
          throw new Unavailable(10_000);
        },
        { ...fast, maxAttempts: 5, isRetryable: isUnavailable, signal: ac.signal },
      ),
    ).rejects.toThrow("caller gave up");
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(
      retry(async () => 1, { ...fast, maxAttempts: 1, isRetryable: () => true, signal: ac.signal }),
    ).rejects.toThrow("caller gave up");
  });

  it("uses the injected random source for the backoff", async () => {
    const events: RetryEvent[] = [];
    await retry(
      async (attempt) => {
        if (attempt < 4) throw new Unavailable();
      },
      {
        maxAttempts: 4,
        baseMs: 2,
        capMs: 10,
        random: () => 0.5,
        isRetryable: isUnavailable,
        onRetry: (e) => events.push(e),
      },
    );
    expect(events.map((e) => e.delayMs)).toEqual([1, 2, 4]);
  });
});
