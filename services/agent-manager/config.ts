import { type ConfigSpec, durationMs, int, list, str } from "../../mesh/config.js";

/**
 * The agent manager's own settings (on top of the host's), checked once at start-up.
 *
 * Timing defaults: agents heartbeat every 5 s; a lease lives 20 s (four beats, so one or two
 * lost beats never cost a run); an agent is OFFLINE after 3 missed intervals (15 s), before its
 * leases expire, so the runs it held are offered elsewhere as soon as their leases lapse.
 */
export const agentManagerConfigSpec = {
  /** AES-256-GCM key (base64 of 32 bytes) sealing info-request answers and signing session tokens. */
  AGENT_MANAGER_ENCRYPTION_KEY: str({ secret: true, pattern: /^[A-Za-z0-9+/]{43}=$/ }),
  /** How often agents heartbeat (sent in Welcome and RegisterAgentResponse). */
  AGENT_MANAGER_HEARTBEAT_INTERVAL: durationMs({ default: "5s", min: 20, max: 300_000 }),
  /** Lease granted on assignment and renewed by every heartbeat; must exceed the interval. */
  AGENT_MANAGER_LEASE_TTL: durationMs({ default: "20s", min: 50, max: 3_600_000 }),
  /** Lease expiries after which a run is LOST (and reported to the scheduler) instead of requeued. */
  AGENT_MANAGER_MAX_LEASE_EXPIRIES: int({ min: 1, max: 100, default: 3 }),
  /** Missed heartbeat intervals after which an agent is OFFLINE. */
  AGENT_MANAGER_OFFLINE_AFTER_INTERVALS: int({ min: 2, max: 100, default: 3 }),
  /** Lifetime of a session token issued by RegisterAgent. */
  AGENT_MANAGER_SESSION_TTL: durationMs({ default: "24h", min: 1_000 }),
  /** Time an agent gets to stop a cancelled run before its lease is revoked and the run CANCELLED. */
  AGENT_MANAGER_CANCEL_GRACE: durationMs({ default: "60s", min: 10 }),
  /** How often expired leases, overdue cancellations and drain deadlines are looked for. */
  AGENT_MANAGER_SWEEP_INTERVAL: durationMs({ default: "250ms", min: 10, max: 60_000 }),
  /** Key prefix of the manager's Redis state (tests use a unique one). */
  AGENT_MANAGER_REDIS_PREFIX: str({ default: "agent-manager:", pattern: /^[A-Za-z0-9:_-]{1,64}$/ }),
  /** Registration API keys accepted as "authorization: Bearer <key>" by RegisterAgent; empty = none. */
  AGENT_MANAGER_REGISTRATION_KEYS: list({ default: [], secret: true }),
  /** Most run changes committed in one transaction (group commit). */
  AGENT_MANAGER_COMMIT_BATCH: int({ min: 1, max: 5_000, default: 500 }),
} satisfies ConfigSpec;
