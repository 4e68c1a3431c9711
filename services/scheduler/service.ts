import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { ProjectService } from "../../gen/codex/project/v1/project_service_pb.js";
import { SchedulerService } from "../../gen/codex/scheduler/v1/scheduler_service_pb.js";
import { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { Host, ServiceDefinition } from "../../mesh/service-host.js";
import { type SchedulerConfigSpec, schedulerConfigSpec } from "./config.js";
import type { Core } from "./core.js";
import { Dispatcher } from "./dispatch/dispatcher.js";
import { runEffects } from "./dispatch/effects-worker.js";
import { createConsumers } from "./events/consumers.js";
import { sagaHandlers } from "./handlers/sagas.js";
import { taskHandlers } from "./handlers/tasks.js";
import { schedulerMetrics } from "./metrics.js";
import { WakeableLoop } from "./queue/loop.js";
import { promoteDue } from "./queue/promoter.js";
import { rebuildIndex } from "./queue/reconciler.js";
import { QueueIndex } from "./queue/redis-index.js";
import { type SagaHooks, SagaRunner } from "./saga/runner.js";
import { purgeRequests } from "./store/idempotency.js";
import { migrations } from "./store/migrations.js";

const DAY_MS = 24 * 3_600_000;
const split = (addresses: string) =>
  addresses
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");

/** The scheduler's shared state on a host: pools, index, downstream clients, settings, wake-ups. */
export function schedulerCore(host: Host<SchedulerConfigSpec>, wake: Core["wake"]): Core {
  const c = host.config;
  const clientOpts = { defaultTimeoutMs: c.DOWNSTREAM_TIMEOUT };
  const index = new QueueIndex(
    host.redis,
    c.REDIS_KEY_PREFIX || `${c.NATS_SUBJECT_PREFIX}:scheduler:`,
    c.QUEUE_SHARDS,
  );
  return {
    pool: host.pool,
    subjects: host.nats.subjects,
    logger: host.logger,
    index,
    metrics: schedulerMetrics(host.metrics.registry, index),
    downstream: {
      project: host.client(ProjectService, split(c.PROJECT_ADDR), clientOpts),
      workItems: host.client(WorkItemService, split(c.WORKITEM_ADDR), clientOpts),
      agents: host.client(AgentManagerService, split(c.AGENT_MANAGER_ADDR), clientOpts),
    },
    settings: {
      dispatchBatch: c.DISPATCH_BATCH,
      dispatchConcurrency: c.DISPATCH_CONCURRENCY,
      dispatchLeaseMs: c.DISPATCH_LEASE,
      reconcileIntervalMs: c.RECONCILE_INTERVAL,
      idlePollMs: c.IDLE_POLL,
      downstreamTimeoutMs: c.DOWNSTREAM_TIMEOUT,
    },
    wake,
  };
}

/** Options of the scheduler's definition; production uses none. */
export interface SchedulerServiceOptions {
  /** Test seams around saga steps (block, fail, crash between steps). */
  sagaHooks?: SagaHooks;
}

/**
 * The scheduler: the queue of work item tasks (Postgres truth, Redis index), its dispatcher,
 * the consumers of run outcomes and work item news, and the WorkItemCreation saga.
 *
 * Background parts, in start order (they stop in reverse): the index reconciler (first round
 * rebuilds Redis from Postgres), the effects worker, the delayed promoter, the dispatcher,
 * the event consumers, the saga runner (first round resumes orphaned sagas), a request-id
 * sweeper. So on shutdown sagas and consumers stop taking work before the dispatcher and the
 * effects worker drain what they started.
 */
export function createSchedulerService(
  opts: SchedulerServiceOptions = {},
): ServiceDefinition<SchedulerConfigSpec> {
  return {
    name: "scheduler",
    config: schedulerConfigSpec,
    migrations,
    nats: true,
    redis: true,
    setup(host) {
      const c = host.config;
      const loops: Record<"reconcile" | "promoter" | "effects", WakeableLoop | undefined> = {
        reconcile: undefined,
        promoter: undefined,
        effects: undefined,
      };
      const core = schedulerCore(host, {
        promoter: () => loops.promoter?.wake(),
        effects: () => loops.effects?.wake(),
        reconcile: () => loops.reconcile?.wake(),
      });
      loops.reconcile = new WakeableLoop(
        "index-reconciler",
        host.logger,
        async () => {
          const stats = await rebuildIndex(core);
          if (stats.reclaimed > 0) host.logger.warn(stats, "handed back expired dispatch claims");
          return c.RECONCILE_INTERVAL;
        },
        c.RECONCILE_INTERVAL,
      );
      loops.effects = new WakeableLoop("effects", host.logger, () => runEffects(core), c.IDLE_POLL);
      loops.promoter = new WakeableLoop("delayed-promoter", host.logger, () => promoteDue(core), c.IDLE_POLL);
      const runner = new SagaRunner(core, {
        leaseMs: c.SAGA_LEASE,
        recoveryIntervalMs: c.SAGA_RECOVERY_INTERVAL,
        stepAttempts: c.SAGA_STEP_ATTEMPTS,
        retryBaseMs: c.SAGA_RETRY_BASE,
        retryCapMs: c.SAGA_RETRY_CAP,
        hooks: opts.sagaHooks,
      });
      host.server.add(SchedulerService, {
        ...taskHandlers(core),
        ...sagaHandlers(core, runner, c.SAGA_LEASE),
      });

      host.addComponent("index-reconciler", loops.reconcile);
      host.addComponent("effects", loops.effects);
      host.addComponent("delayed-promoter", loops.promoter);
      host.addComponent("dispatcher", new Dispatcher(core, host.redis.duplicate()));
      for (const { name, consumer } of createConsumers(core, host.nats.nc, c.CONSUMER_CONCURRENCY)) {
        host.addComponent(name, consumer);
      }
      host.addComponent("sagas", runner);
      let sweep: NodeJS.Timeout | undefined;
      host.addComponent("request-id-sweeper", {
        start: async () => {
          sweep = setInterval(() => {
            purgeRequests(host.pool, new Date(Date.now() - DAY_MS)).catch((err: unknown) =>
              host.logger.warn({ err }, "request id sweep failed"),
            );
          }, 600_000);
          sweep.unref();
        },
        stop: async () => clearInterval(sweep),
      });
    },
  };
}

/** The scheduler as deployed. */
export const schedulerService = createSchedulerService();
