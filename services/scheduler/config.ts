import { type ConfigSpec, durationMs, int, str } from "../../mesh/config.js";

/** The scheduler's own settings (on top of the host's), checked once at start-up. */
export const schedulerConfigSpec = {
  /** Project service address(es), comma-separated for several replicas. */
  PROJECT_ADDR: str({ default: "127.0.0.1:50052" }),
  /** WorkItem service address(es). */
  WORKITEM_ADDR: str({ default: "127.0.0.1:50053" }),
  /** Agent manager address(es). */
  AGENT_MANAGER_ADDR: str({ default: "127.0.0.1:50055" }),
  /** Prefix of every Redis key; empty means "<NATS_SUBJECT_PREFIX>:scheduler:". */
  REDIS_KEY_PREFIX: str({ default: "", pattern: /^[A-Za-z0-9_:.-]*$/ }),
  /** Shards of the READY index (one sorted set each). */
  QUEUE_SHARDS: int({ min: 1, max: 64, default: 1 }),
  /** Tasks claimed from Postgres per round trip. */
  DISPATCH_BATCH: int({ min: 1, max: 1_000, default: 64 }),
  /** Dispatches (work item read, quota reservation, EnqueueRun) in flight at once. */
  DISPATCH_CONCURRENCY: int({ min: 1, max: 2_000, default: 128 }),
  /** A DISPATCHED task without a run after this long is handed back to the queue (crashed dispatcher). */
  DISPATCH_LEASE: durationMs({ default: "30s", min: 100 }),
  /** How often the Redis index is rebuilt from Postgres even when nothing looks wrong. */
  RECONCILE_INTERVAL: durationMs({ default: "30s", min: 50 }),
  /** Longest sleep of the idle loops (dispatcher, delayed promoter, effects) between wake-ups. */
  IDLE_POLL: durationMs({ default: "1s", min: 10 }),
  /** Concurrent handlers per event consumer. */
  CONSUMER_CONCURRENCY: int({ min: 1, max: 512, default: 32 }),
  /** How long a replica owns a saga it runs before another may take it over. */
  SAGA_LEASE: durationMs({ default: "30s", min: 100 }),
  /** How often unowned, unfinished sagas are looked for (crash recovery). */
  SAGA_RECOVERY_INTERVAL: durationMs({ default: "5s", min: 50 }),
  /** Attempts of a saga step (or compensation) failing with a retryable code. */
  SAGA_STEP_ATTEMPTS: int({ min: 1, max: 100, default: 5 }),
  /** Backoff base and cap between those attempts (full jitter). */
  SAGA_RETRY_BASE: durationMs({ default: "200ms", min: 1 }),
  SAGA_RETRY_CAP: durationMs({ default: "5s", min: 1 }),
  /** Deadline of each downstream call. */
  DOWNSTREAM_TIMEOUT: durationMs({ default: "10s", min: 100 }),
} satisfies ConfigSpec;

export type SchedulerConfigSpec = typeof schedulerConfigSpec;
