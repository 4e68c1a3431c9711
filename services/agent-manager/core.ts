/**
 * Everything the handlers and the Connect sessions share, built once by service.ts. One
 * object rather than long parameter lists: the parts are few, long-lived and wired together.
 */
import type pg from "pg";
import type { Logger } from "../../mesh/logging.js";
import type { Subjects } from "../../mesh/nats/subjects.js";
import type { AmMetrics } from "./am-metrics.js";
import type { SessionRegistry } from "./connect/registry.js";
import type { AgentOps } from "./dispatch/agent-ops.js";
import type { Dispatcher } from "./dispatch/dispatcher.js";
import type { LogHub } from "./dispatch/log-hub.js";
import type { Sweeper } from "./dispatch/sweeper.js";
import type { Keys } from "./domain/keys.js";
import type { LeaseStore } from "./liveness/lease-store.js";
import type { Notifier } from "./liveness/notifier.js";
import type { AnswerSecrets } from "./store/answer-secrets.js";
import type { GroupCommitter } from "./store/group-commit.js";
import type { EndingKinds } from "./store/run-endings.js";

/** Timing and limits, from config. */
export interface Settings {
  heartbeatIntervalMs: number;
  leaseTtlMs: number;
  maxLeaseExpiries: number;
  sessionTtlMs: number;
  cancelGraceMs: number;
  registrationKeys: readonly string[];
}

export interface Core {
  readonly pool: pg.Pool;
  readonly subjects: Subjects;
  readonly logger: Logger;
  readonly keys: Keys;
  readonly settings: Settings;
  readonly metrics: AmMetrics;
  readonly committer: GroupCommitter;
  readonly endings: EndingKinds;
  readonly leases: LeaseStore;
  readonly notifier: Notifier;
  readonly dispatcher: Dispatcher;
  readonly secrets: AnswerSecrets;
  readonly logHub: LogHub;
  readonly ops: AgentOps;
  readonly sessions: SessionRegistry;
  readonly sweeper: Sweeper;
}
