/**
 * The Generic Cell Rate Algorithm in one Redis script: atomic, one round trip, one key per
 * client and class holding a single number (the theoretical arrival time, TAT).
 *
 * Why GCRA rather than a sliding-window log or counter: it is exact (no window edges letting
 * 2× through), stores one value per client instead of one per request, and yields the
 * remaining allowance and the precise retry delay directly. The clock is Redis's own (TIME),
 * so every gateway replica judges against the same time even if theirs drift.
 *
 * With emission interval T = period / limit and burst B: a request is allowed when
 * max(TAT, now) + T − B·T ≤ now; the TAT then advances by T. An idle client may send B
 * requests at once; after that one per T; a refused client may retry after exactly the
 * time until the next one fits.
 */
import type { Redis } from "ioredis";

const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tolerance
if allow_at > now then
  return {0, 0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, math.floor((tolerance - (new_tat - now)) / interval), 0}
`;

/** One GCRA bucket's parameters. */
export interface Bucket {
  /** Requests per period. */
  limit: number;
  periodMs: number;
  /** Requests an idle client may send at once (default: `limit`). */
  burst?: number;
}

/** The outcome of one take. */
export interface GcraResult {
  allowed: boolean;
  remaining: number;
  retryAfterMs: number;
}

type GcraRedis = Redis & {
  gcraTake(key: string, intervalMs: string, burst: string): Promise<[number, number, number]>;
};

/** Defines the script on a client (EVALSHA with a fallback to EVAL, handled by ioredis). */
export function withGcra(redis: Redis): GcraRedis {
  const r = redis as GcraRedis;
  if (typeof r.gcraTake !== "function") r.defineCommand("gcraTake", { numberOfKeys: 1, lua: SCRIPT });
  return r;
}

/** Takes one request from the bucket stored at `key`. */
export async function gcraTake(redis: GcraRedis, key: string, bucket: Bucket): Promise<GcraResult> {
  const interval = bucket.periodMs / bucket.limit;
  const burst = bucket.burst ?? bucket.limit;
  const [allowed, remaining, retryAfterMs] = await redis.gcraTake(key, String(interval), String(burst));
  return { allowed: allowed === 1, remaining, retryAfterMs };
}
