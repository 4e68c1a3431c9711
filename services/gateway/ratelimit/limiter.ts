/**
 * Per-client, per-route-class rate limits over GCRA in Redis (gcra.ts).
 *
 * Buckets: one per client key (`<principal type>:<principal id>`) and route class, sized by
 * the class's limit (RATE_LIMIT_READ=600/m…). An API key with its own requests_per_minute
 * gets one bucket of that size for all its calls instead: the owner who set "60 per minute"
 * means 60 in total, not 60 per class.
 *
 * When Redis fails (down, slow beyond `timeoutMs`), the default is to fail open: the call is
 * let through, counted in `gateway_rate_limit_errors_total` and logged (at most once per
 * 10 s). Rate limits protect capacity, not secrets — authentication and authorization still
 * run — and Redis holds rebuildable state by design, so a Redis blip must not become a full
 * outage. `failMode: "closed"` refuses with UNAVAILABLE instead, for deployments that prefer it.
 */
import type { Redis } from "ioredis";
import { Counter, type Registry } from "prom-client";
import { unavailable } from "../../../mesh/errors.js";
import type { Logger } from "../../../mesh/logging.js";
import type { RateLimitDecision, RateLimiter, RouteClass } from "../pipeline/types.js";
import { type Bucket, gcraTake, withGcra } from "./gcra.js";

export type ClassLimits = Readonly<Record<RouteClass, Bucket>>;

export interface RateLimiterDeps {
  redis: Redis;
  limits: ClassLimits;
  /** Redis key prefix (tests use a unique one). */
  keyPrefix: string;
  failMode: "open" | "closed";
  /** A client's own requests-per-minute, when it has one (API keys). */
  perMinuteOverride?: (clientKey: string) => number | undefined;
  /** Longest wait for Redis before treating it as down. */
  timeoutMs?: number;
  logger?: Pick<Logger, "warn">;
  registry?: Registry;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: ReturnType<typeof withGcra>;
  private readonly errors: Counter<"mode">;
  private readonly refused: Counter<"class">;
  private lastWarning = 0;

  constructor(private readonly deps: RateLimiterDeps) {
    this.redis = withGcra(deps.redis);
    const registers = deps.registry ? [deps.registry] : [];
    this.errors = new Counter({
      name: "gateway_rate_limit_errors_total",
      help: "Rate-limit checks Redis could not answer, by the fail mode applied",
      labelNames: ["mode"],
      registers,
    });
    this.refused = new Counter({
      name: "gateway_rate_limited_total",
      help: "Calls refused by a rate limit, by route class",
      labelNames: ["class"],
      registers,
    });
  }

  async take(clientKey: string, routeClass: RouteClass): Promise<RateLimitDecision> {
    const own = this.deps.perMinuteOverride?.(clientKey);
    const bucket: Bucket =
      own !== undefined && own > 0 ? { limit: own, periodMs: 60_000 } : this.deps.limits[routeClass];
    const key = `${this.deps.keyPrefix}${own ? "all" : routeClass}:${clientKey}`;
    try {
      const r = await withTimeout(gcraTake(this.redis, key, bucket), this.deps.timeoutMs ?? 250);
      if (!r.allowed) this.refused.inc({ class: routeClass });
      return {
        allowed: r.allowed,
        limit: bucket.burst ?? bucket.limit,
        remaining: r.remaining,
        retryAfterMs: r.retryAfterMs,
      };
    } catch (err) {
      this.errors.inc({ mode: this.deps.failMode });
      this.warn(err);
      if (this.deps.failMode === "closed")
        throw unavailable("rate limiter unavailable; retry shortly", 1_000);
      const limit = bucket.burst ?? bucket.limit;
      return { allowed: true, limit, remaining: limit, retryAfterMs: 0 };
    }
  }

  private warn(err: unknown): void {
    const now = Date.now();
    if (now - this.lastWarning < 10_000) return;
    this.lastWarning = now;
    this.deps.logger?.warn({ err, failMode: this.deps.failMode }, "rate limiter cannot reach Redis");
  }
}

/** A limiter that allows everything (RATE_LIMIT_DISABLED, local development). */
export const unlimited: RateLimiter = {
  take: async () => ({ allowed: true, limit: 0, remaining: 0, retryAfterMs: 0 }),
};

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** Parses "600/m" into a bucket. @throws Error naming the variable when malformed. */
export function parseRate(variable: string, raw: string): Bucket {
  const m = /^([1-9]\d{0,6})\/(s|m|h)$/.exec(raw.trim());
  if (!m) throw new Error(`${variable}: must look like 600/m (count per s, m or h), got '${raw}'`);
  return { limit: Number(m[1]), periodMs: UNIT_MS[m[2] as keyof typeof UNIT_MS] };
}
