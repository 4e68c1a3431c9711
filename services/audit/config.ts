import { type ConfigOf, type ConfigSpec, durationMs, int } from "../../mesh/config.js";

/**
 * The audit service's own settings (on top of the host's). Parsed once at start-up by the
 * service host; nothing else in the service reads the environment.
 */
export const auditConfigSpec = {
  /**
   * Deliveries of one event before it is dead-lettered. High on purpose: a transient outage
   * (Postgres down) must delay the trail, not punch holes in it; only undecodable messages
   * go to the DLQ at once.
   */
  AUDIT_MAX_DELIVER: int({ min: 2, default: 1_000 }),
  /** How long JetStream waits for an ack before redelivering an event. */
  AUDIT_ACK_WAIT_MS: durationMs({ default: 30_000 }),
  /** Records read per round trip by exports, verification and replay (bounds memory). */
  AUDIT_BATCH_SIZE: int({ min: 1, max: 10_000, default: 500 }),
  /** Largest export chunk in bytes (the API promises at most 1 MiB). */
  AUDIT_EXPORT_CHUNK_BYTES: int({ min: 1_024, max: 1_048_576, default: 1_048_576 }),
} satisfies ConfigSpec;

export type AuditConfig = ConfigOf<typeof auditConfigSpec>;
