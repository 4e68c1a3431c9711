import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ServiceError } from "../../../mesh/errors.js";
import { closeRedis, createRedis, type Redis } from "../../../mesh/redis.js";
import { REDIS_URL, uniqueName } from "../../../test/support/harness.js";
import { type ClassLimits, parseRate, RedisRateLimiter } from "./limiter.js";

const LIMITS: ClassLimits = {
  read: { limit: 5, periodMs: 1_000 },
  write: { limit: 3, periodMs: 3_000 },
  agent: { limit: 100, periodMs: 1_000 },
  stream: { limit: 2, periodMs: 60_000 },
};

describe("RedisRateLimiter (GCRA against real Redis)", () => {
  let redis: Redis;
  const prefix = `${uniqueName("rl")}:`;

  beforeAll(() => {
    redis = createRedis(REDIS_URL, { name: "ratelimit-test" });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await closeRedis(redis);
  });

  const limiter = (extra: Partial<ConstructorParameters<typeof RedisRateLimiter>[0]> = {}) =>
    new RedisRateLimiter({ redis, limits: LIMITS, keyPrefix: prefix, failMode: "open", ...extra });

  it("allows a burst with decreasing remaining, then refuses with retry-after ≈ one emission interval", async () => {
    const rl = limiter();
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const d = await rl.take("user:burst", "write");
      expect(d).toMatchObject({ allowed: true, limit: 3, retryAfterMs: 0 });
      seen.push(d.remaining);
    }
    expect(seen).toEqual([2, 1, 0]);
    const refused = await rl.take("user:burst", "write");
    expect(refused.allowed).toBe(false);
    expect(refused.remaining).toBe(0);
    // Emission interval: 3 s / 3 = 1 s; a few ms have passed since the burst.
    expect(refused.retryAfterMs).toBeGreaterThan(800);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000);
    // Refusals do not consume: the delay only shrinks.
    const again = await rl.take("user:burst", "write");
    expect(again.retryAfterMs).toBeLessThanOrEqual(refused.retryAfterMs);
  });

  it("lets a client in again once the retry-after has passed", async () => {
    const rl = limiter();
    for (let i = 0; i < 5; i++) expect((await rl.take("user:refill", "read")).allowed).toBe(true);
    const refused = await rl.take("user:refill", "read");
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(200);
    await new Promise((r) => setTimeout(r, refused.retryAfterMs + 20));
    const d = await rl.take("user:refill", "read");
    expect(d).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("keeps classes and clients independent", async () => {
    const rl = limiter();
    for (let i = 0; i < 2; i++) await rl.take("user:classes", "stream");
    expect((await rl.take("user:classes", "stream")).allowed).toBe(false);
    expect((await rl.take("user:classes", "read")).allowed).toBe(true);
    expect((await rl.take("user:classes", "write")).allowed).toBe(true);
    expect((await rl.take("user:other", "stream")).allowed).toBe(true);
  });

  it("applies an API key's own per-minute limit to all its calls", async () => {
    const rl = limiter({ perMinuteOverride: (k) => (k === "api_key:k1" ? 2 : undefined) });
    expect(await rl.take("api_key:k1", "read")).toMatchObject({ allowed: true, limit: 2, remaining: 1 });
    expect(await rl.take("api_key:k1", "write")).toMatchObject({ allowed: true, remaining: 0 });
    const refused = await rl.take("api_key:k1", "agent");
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(25_000); // 60 s / 2 per key
  });

  it("shares state between gateway replicas (two clients, one bucket)", async () => {
    const other = createRedis(REDIS_URL, { name: "ratelimit-test-2" });
    try {
      const a = limiter();
      const b = new RedisRateLimiter({ redis: other, limits: LIMITS, keyPrefix: prefix, failMode: "open" });
      await a.take("user:replicas", "stream");
      await b.take("user:replicas", "stream");
      expect((await a.take("user:replicas", "stream")).allowed).toBe(false);
    } finally {
      await closeRedis(other);
    }
  });

  it("fails open when Redis is unreachable, counting it, or closed with UNAVAILABLE", async () => {
    const dead = createRedis("redis://127.0.0.1:1", { name: "dead", maxRetriesPerRequest: 0 });
    try {
      const registry = new Registry();
      const open = new RedisRateLimiter({
        redis: dead,
        limits: LIMITS,
        keyPrefix: prefix,
        failMode: "open",
        registry,
      });
      expect(await open.take("user:x", "read")).toMatchObject({ allowed: true, limit: 5 });
      expect(await registry.getSingleMetricAsString("gateway_rate_limit_errors_total")).toMatch(
        /mode="open"} 1/,
      );
      const closed = new RedisRateLimiter({
        redis: dead,
        limits: LIMITS,
        keyPrefix: prefix,
        failMode: "closed",
      });
      const err = await closed.take("user:x", "read").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ServiceError);
      expect((err as ServiceError).code).toBe(Code.UNAVAILABLE);
    } finally {
      dead.disconnect();
    }
  });
});

describe("parseRate", () => {
  it("reads count per unit and refuses the rest", () => {
    expect(parseRate("X", "600/m")).toEqual({ limit: 600, periodMs: 60_000 });
    expect(parseRate("X", "10/s")).toEqual({ limit: 10, periodMs: 1_000 });
    expect(() => parseRate("RATE_LIMIT_READ", "0/m")).toThrow(/RATE_LIMIT_READ/);
    expect(() => parseRate("X", "10/day")).toThrow();
  });
});
