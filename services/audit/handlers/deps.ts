import type pg from "pg";
import type { Logger } from "../../../mesh/logging.js";
import type { Subjects } from "../../../mesh/nats/subjects.js";

/** What the RPC handlers need: the store, where to publish, and their limits. */
export interface AuditDeps {
  pool: pg.Pool;
  subjects: Subjects;
  logger: Logger;
  /** Records per round trip for exports, verification and replay. */
  batchSize: number;
  /** Largest export chunk in bytes. */
  chunkBytes: number;
  /** Callers with an export running on this replica (one at a time per caller). */
  activeExports: Set<string>;
}
