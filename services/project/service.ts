import { ProjectService } from "../../gen/codex/project/v1/project_service_pb.js";
import { outboxMigrationSql } from "../../mesh/outbox/schema.js";
import type { ServiceDefinition } from "../../mesh/service-host.js";
import { projectConfigSpec } from "./config.js";
import type { Deps } from "./handlers/context.js";
import { requestIds } from "./handlers/idempotency.js";
import { memberHandlers } from "./handlers/members.js";
import { projectHandlers } from "./handlers/projects.js";
import { quotaHandlers } from "./handlers/quotas.js";
import { requirementsHandlers } from "./handlers/requirements.js";
import { requirementsReadHandlers } from "./handlers/requirements-read.js";
import { visionHandlers } from "./handlers/vision.js";
import { migrations } from "./store/migrations.js";

const SWEEP_INTERVAL_MS = 10 * 60_000;

/**
 * The Project service: projects, members, vision, requirements approval and run quotas.
 * Postgres holds its state; every change stages its event in the outbox, which the host
 * relays to JetStream.
 */
export const projectService: ServiceDefinition<typeof projectConfigSpec> = {
  name: "project",
  config: projectConfigSpec,
  migrations: [...migrations, { version: 2, name: "outbox", sql: outboxMigrationSql() }],
  nats: true,
  setup(host) {
    const { config } = host;
    const deps: Deps = {
      pool: host.pool,
      subjects: host.nats.subjects,
      logger: host.logger,
      defaults: {
        runsPerDay: config.DEFAULT_RUNS_PER_DAY,
        maxConcurrentRuns: config.DEFAULT_MAX_CONCURRENT_RUNS,
      },
      maxProjectsPerPrincipal: config.MAX_PROJECTS_PER_PRINCIPAL,
      concurrencyRetryMs: config.QUOTA_CONCURRENCY_RETRY_MS,
      now: () => new Date(),
    };
    host.server.add(ProjectService, {
      ...projectHandlers(deps),
      ...memberHandlers(deps),
      ...visionHandlers(deps),
      ...requirementsHandlers(deps),
      ...requirementsReadHandlers(deps),
      ...quotaHandlers(deps),
    });
    // Expired request ids are ignored on read; this only keeps the table small.
    let timer: NodeJS.Timeout | undefined;
    host.addComponent("idempotency-sweeper", {
      start: async () => {
        timer = setInterval(() => {
          requestIds
            .purgeExpired(host.pool, new Date())
            .catch((err: unknown) => host.logger.warn({ err }, "idempotency key sweep failed"));
        }, SWEEP_INTERVAL_MS);
        timer.unref();
      },
      stop: async () => clearInterval(timer),
    });
  },
};
