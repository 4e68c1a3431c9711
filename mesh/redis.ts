/**
 * Redis clients for fast, rebuildable state (queue indexes, leases, rate limits, L2 cache).
 *
 * Why these settings: Redis may restart at any time and lose everything (by design here), so a
 * client must ride out disconnects without crashing the service. The connection is opened at
 * once (`lazyConnect: false`) so a wrong URL shows at start-up, commands issued while reconnecting
 * wait in the offline queue, and each command gives up after a few reconnect attempts
 * (`maxRetriesPerRequest`) so a handler fails within its deadline instead of hanging on Redis.
 * Reconnects back off with full jitter so a fleet does not reconnect in lock-step.
 * Auto-pipelining sends the commands issued in one event-loop turn in one write (order kept):
 * at a thousand runs a second the lease grants, renewals and notices of a group commit would
 * otherwise cost a syscall each.
 */
import { Redis } from "ioredis";
import type { Logger } from "./logging.js";
import { backoffDelay } from "./resilience/retry.js";

export type { Redis };

export interface RedisOptions {
  /** Prepended to every key (e.g. "scheduler:"); tests use a unique one and delete it afterwards. */
  keyPrefix?: string;
  /** Shown in CLIENT LIST, to tell which service and role holds a connection. */
  name?: string;
  /** Reconnect attempts a command waits through before failing (default 3). */
  maxRetriesPerRequest?: number;
  /** Connection errors are logged here (ioredis otherwise prints them to stderr). */
  logger?: Pick<Logger, "warn">;
}

/** Creates a connected (connecting) client for `url` (redis:// or rediss://). */
export function createRedis(url: string, opts: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: true,
    maxRetriesPerRequest: opts.maxRetriesPerRequest ?? 3,
    connectTimeout: 5_000,
    enableAutoPipelining: true,
    retryStrategy: (times) => 50 + backoffDelay(times - 1, 100, 2_000),
    ...(opts.keyPrefix !== undefined ? { keyPrefix: opts.keyPrefix } : {}),
    ...(opts.name !== undefined ? { connectionName: opts.name } : {}),
  });
  client.on("error", (err: Error) => opts.logger?.warn({ err, redis: opts.name }, "redis connection error"));
  return client;
}

/**
 * Readiness probe: true when Redis answers PING within `timeoutMs`. Never throws, so a health
 * check can report NOT_SERVING instead of failing.
 */
export async function ping(client: Redis, timeoutMs = 1_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([client.ping().then((r) => r === "PONG"), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes politely (QUIT waits for pending replies) but never longer than `timeoutMs`; then drops
 * the socket. Fits a Lifecycle component's `stop`.
 */
export async function closeRedis(client: Redis, timeoutMs = 2_000): Promise<void> {
  // A function, not an inline comparison: the status changes across the awaits below.
  const isEnded = () => client.status === "end";
  if (isEnded()) return;
  const ended = new Promise<void>((resolve) => client.once("end", () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([client.quit().then(() => ended), timeout]);
  } catch {
    // Already closing or never connected: disconnect below is enough.
  } finally {
    clearTimeout(timer);
  }
  if (!isEnded()) {
    // Between reconnect attempts there is no socket left to close, so ioredis cancels the pending
    // reconnect but never emits "end": wait briefly for it, not forever.
    client.disconnect();
    await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 100))]);
  }
}
