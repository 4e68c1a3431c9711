/**
 * The lease store's Lua scripts: each keeps a multi-key change atomic (a lease's expiry and its
 * owner never disagree) in one command, registered once per client and called by SHA.
 */
import type { Redis } from "ioredis";

const RENEW = `
local agent = ARGV[1]
redis.call('ZADD', KEYS[4], ARGV[2], agent)
redis.call('HDEL', KEYS[6], agent)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[5], agent, ARGV[4]) end
if redis.call('EXISTS', KEYS[3]) == 0 then return -2 end
local out = {}
for i = 5, #ARGV, 2 do
  local v = redis.call('HGET', KEYS[2], ARGV[i])
  local r = -1
  if v then
    local tok, ag, cancel = string.match(v, '^([^|]*)|([^|]*)|([^|]*)$')
    if tok == ARGV[i + 1] and ag == agent then
      redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[i])
      r = tonumber(cancel)
    end
  end
  out[#out + 1] = r
end
return out`;

const TAKE_EXPIRED = `
if redis.call('EXISTS', KEYS[3]) == 0 then return false end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
for i = 1, #ids, 2 do
  local v = redis.call('HGET', KEYS[2], ids[i])
  redis.call('ZREM', KEYS[1], ids[i])
  redis.call('HDEL', KEYS[2], ids[i])
  out[#out + 1] = ids[i]
  out[#out + 1] = v or ''
  out[#out + 1] = ids[i + 1]
end
return out`;

const MARK_CANCEL = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local tok, ag = string.match(v, '^([^|]*)|([^|]*)|')
if tok ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], tok .. '|' .. ag .. '|1')
return 1`;

const GRANT = `
for i = 1, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
end
return #ARGV / 3`;

const RELEASE = `
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return #ARGV`;

/** The scripts, registered once per client (EVALSHA, falling back to EVAL after a Redis restart). */
export interface Scripts {
  amGrant(leases: string, lease: string, ...args: string[]): Promise<number>;
  amRelease(leases: string, lease: string, ...runIds: string[]): Promise<number>;
  amRenew(...keysAndArgs: string[]): Promise<number | number[]>;
  amTakeExpired(
    leases: string,
    lease: string,
    epoch: string,
    now: string,
    limit: string,
  ): Promise<string[] | null>;
  amMarkCancel(lease: string, runId: string, token: string): Promise<number>;
}

export function scripts(redis: Redis): Scripts {
  const r = redis as Redis & Partial<Scripts>;
  if (!r.amGrant) {
    redis.defineCommand("amGrant", { numberOfKeys: 2, lua: GRANT });
    redis.defineCommand("amRelease", { numberOfKeys: 2, lua: RELEASE });
    redis.defineCommand("amRenew", { numberOfKeys: 6, lua: RENEW });
    redis.defineCommand("amTakeExpired", { numberOfKeys: 3, lua: TAKE_EXPIRED });
    redis.defineCommand("amMarkCancel", { numberOfKeys: 1, lua: MARK_CANCEL });
  }
  return r as Redis & Scripts;
}
