import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import type { ProjectService } from "../../gen/codex/project/v1/project_service_pb.js";
import type { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import { type Principal, runWithContext } from "../../mesh/context.js";
import type { ServiceClient } from "../../mesh/grpc/types.js";
import type { Logger } from "../../mesh/logging.js";
import type { Subjects } from "../../mesh/nats/subjects.js";
import { withTransaction } from "../../mesh/postgres/pool.js";
import { SCHEDULER_PRINCIPAL } from "./events/publish.js";
import type { SchedulerMetrics } from "./metrics.js";
import type { DelayedEntry, QueueIndex, ReadyEntry } from "./queue/redis-index.js";

/** Clients of the services the scheduler calls. */
export interface Downstream {
  project: ServiceClient<typeof ProjectService>;
  workItems: ServiceClient<typeof WorkItemService>;
  agents: ServiceClient<typeof AgentManagerService>;
}

/** Tunables the parts of the scheduler read (from config). */
export interface Settings {
  dispatchBatch: number;
  dispatchConcurrency: number;
  dispatchLeaseMs: number;
  reconcileIntervalMs: number;
  idlePollMs: number;
  downstreamTimeoutMs: number;
}

/** Everything the scheduler's parts share; built once by service.ts. */
export interface Core {
  pool: pg.Pool;
  subjects: Subjects;
  logger: Logger;
  index: QueueIndex;
  downstream: Downstream;
  settings: Settings;
  metrics: SchedulerMetrics;
  /** Nudges the background loops after a commit gave them work. */
  wake: { promoter(): void; effects(): void; reconcile(): void };
}

/** What a transaction changed in the queue, for the Redis index once it committed. */
export interface QueueChanges {
  ready: ReadyEntry[];
  delayed: DelayedEntry[];
  removed: string[];
}

/** A transaction plus what to tell Redis and the loops after it commits. */
export interface Tx {
  client: pg.PoolClient;
  changes: QueueChanges;
  /** Set when effects were enqueued, so the effects worker is woken. */
  effects: boolean;
}

export function emptyChanges(): QueueChanges {
  return { ready: [], delayed: [], removed: [] };
}

/**
 * Runs `fn` in a Postgres transaction and, after COMMIT, mirrors its queue changes into Redis
 * and wakes the loops. A Redis failure is only logged: the index is rebuilt from Postgres.
 */
export async function transact<T>(core: Core, fn: (tx: Tx) => Promise<T>): Promise<T> {
  let scope: Tx | undefined;
  const result = await withTransaction(core.pool, async (client) => {
    scope = { client, changes: emptyChanges(), effects: false };
    return fn(scope);
  });
  if (scope) await publishChanges(core, scope.changes, scope.effects);
  return result;
}

export async function publishChanges(core: Core, changes: QueueChanges, effects = false): Promise<void> {
  try {
    await core.index.remove(changes.removed);
    await core.index.addDelayed(changes.delayed);
    await core.index.addReady(changes.ready);
  } catch (err) {
    core.logger.warn({ err }, "queue index update failed; the reconciler will rebuild it");
    core.wake.reconcile();
  }
  if (changes.delayed.length > 0) core.wake.promoter();
  if (effects) core.wake.effects();
}

/** Runs `fn` as the scheduler itself (internal RPCs refuse users), under a fresh request id. */
export function asScheduler<T>(fn: () => Promise<T>, correlationId?: string): Promise<T> {
  return asPrincipal(SCHEDULER_PRINCIPAL, fn, correlationId);
}

/** Runs `fn` with `principal` forwarded on every downstream call it makes. */
export function asPrincipal<T>(
  principal: Principal,
  fn: () => Promise<T>,
  correlationId?: string,
): Promise<T> {
  const requestId = randomUUID();
  return runWithContext({ requestId, correlationId: correlationId || requestId, principal }, fn);
}
