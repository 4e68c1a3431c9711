import { bool, type ConfigOf, durationMs, int, list, optional, str, url } from "../../mesh/config.js";

/** 32 bytes in standard or URL-safe base64 (43-44 characters). */
const KEY_B64 = /^[A-Za-z0-9+/_-]{43}=?$/;

/**
 * The notification service's settings (on top of the host's). Defaults follow the
 * Subscription contract: 8 attempts, 10 s base, 1 h cap.
 */
export const notificationConfigSpec = {
  /** AES-256-GCM key sealing webhook secrets and Slack URLs at rest: 32 bytes, base64. Required. */
  NOTIFICATION_ENCRYPTION_KEY: str({ secret: true, pattern: KEY_B64 }),
  /** SMTP server for email channels, e.g. smtp://user:pass@mail:587 or smtps://... */
  SMTP_URL: url({ default: "smtp://127.0.0.1:2525", protocols: ["smtp", "smtps"], secret: true }),
  /** Sender address of notification emails. */
  SMTP_FROM: str({ default: "Codex Orchestrator <notifications@codex.local>" }),
  /** Attempts per delivery series before dead-lettering (first attempt included). */
  DELIVERY_MAX_ATTEMPTS: int({ min: 1, max: 100, default: 8 }),
  /** Backoff base and cap: the n-th retry waits uniform [0, min(cap, base·2^(n-1))). */
  DELIVERY_BACKOFF_BASE: durationMs({ default: "10s", min: 0 }),
  DELIVERY_BACKOFF_CAP: durationMs({ default: "1h", min: 0 }),
  /** Timeout of one outbound HTTP request or SMTP transaction. */
  DELIVERY_TIMEOUT: durationMs({ default: "10s", min: 100 }),
  /**
   * How long a worker owns a claimed delivery. Must exceed DELIVERY_TIMEOUT: a worker killed
   * mid-send leaves its claim, and another worker retries it once the lease has passed.
   */
  DELIVERY_LEASE: durationMs({ default: "60s", min: 200 }),
  /** How often the delivery worker looks for due deliveries when not woken earlier. */
  WORKER_POLL_INTERVAL: durationMs({ default: "1s", min: 10 }),
  /** Deliveries sent at once by one replica. */
  WORKER_CONCURRENCY: int({ min: 1, max: 256, default: 8 }),
  /** How long attempts, dead letters and stored events are kept. */
  DELIVERY_RETENTION: durationMs({ default: 30 * 86_400_000, min: 60_000 }),
  /**
   * How often each replica checks whether subscriptions changed (one one-row read) and reloads its
   * in-memory index: the bound after which a change made through another replica applies to
   * every event consumed here. Changes made through this replica apply at once.
   */
  SUBSCRIPTION_REFRESH_INTERVAL: durationMs({ default: "1s", min: 10 }),
  /** JetStream ack wait of the event consumers (redelivery after a crash mid-handling). */
  CONSUMER_ACK_WAIT: durationMs({ default: "30s", min: 1_000 }),
  /** Allow plain http:// webhook and Slack URLs (tests, local development). */
  WEBHOOK_ALLOW_HTTP: bool({ default: false }),
  /** Allow targets on loopback, private and link-local addresses (tests only; SSRF risk). */
  WEBHOOK_ALLOW_PRIVATE_TARGETS: bool({ default: false }),
  /** Hosts Slack incoming webhook URLs may point to. */
  SLACK_ALLOWED_HOSTS: list({ default: ["hooks.slack.com"] }),
  /** Base URL of the web console, for the link in default Slack and email messages. */
  CONSOLE_URL: optional(url({ protocols: ["http", "https"] })),
  /** Subscriptions per project (the contract says 100). */
  MAX_SUBSCRIPTIONS_PER_PROJECT: int({ min: 1, default: 100 }),
};

export type NotificationConfig = ConfigOf<typeof notificationConfigSpec>;
