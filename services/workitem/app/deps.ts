import type pg from "pg";
import type { Logger } from "../../../mesh/logging.js";
import type { Events } from "../events.js";
import type { BlobStore } from "../store/blob-store.js";
import type { RunLeases } from "./run-leases.js";

/** What the handlers and use cases share: connections, the outbox, limits and one clock. */
export interface Deps {
  pool: pg.Pool;
  events: Events;
  logger: Logger;
  /** The artifact store; available once the service has started. */
  blobs(): BlobStore;
  limits: { artifactMaxBytes: number };
  /** Whether an agent holds a run's current lease (the agent manager's answer). */
  leases: RunLeases;
  /** One clock for stored times, expiry checks and events (tests may replace it). */
  now(): Date;
}
