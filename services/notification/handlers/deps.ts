import type { Registry } from "@bufbuild/protobuf";
import type pg from "pg";
import type { SecretBox } from "../../../mesh/crypto/secret-box.js";
import type { Logger } from "../../../mesh/logging.js";
import type { Sender } from "../channels/types.js";
import type { TargetPolicy } from "../domain/validation.js";
import type { EventStager } from "../events/emit.js";

/** What the RPC handlers share. */
export interface HandlerDeps {
  pool: pg.Pool;
  box: SecretBox;
  stager: EventStager;
  registry: Registry;
  sender: Sender;
  targets: TargetPolicy;
  maxSubscriptionsPerProject: number;
  consoleUrl?: string | undefined;
  logger: Logger;
  /** Tells the delivery worker that something became due (redelivery). */
  wakeWorker: () => void;
  /**
   * Called after a transaction that changed subscriptions committed, before the RPC answers, so
   * this replica's consumer matches every event published after the answer against the change.
   */
  subscriptionsChanged: () => void;
}
