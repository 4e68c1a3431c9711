import { AgentManagerService } from "../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { WorkItemService } from "../../gen/codex/workitem/v1/workitem_service_pb.js";
import type { ServiceDefinition } from "../../mesh/service-host.js";
import type { Deps } from "./app/deps.js";
import { agentManagerLeases } from "./app/run-leases.js";
import { Sweeper } from "./app/sweeper.js";
import { type WorkitemConfigSpec, workitemConfigSpec } from "./config.js";
import { Events } from "./events.js";
import { approvalHandlers } from "./handlers/approvals.js";
import { artifactHandlers } from "./handlers/artifacts.js";
import { lifecycleHandlers } from "./handlers/lifecycle.js";
import { listWorkItemsHandler } from "./handlers/list-work-items.js";
import { policyHandlers } from "./handlers/policies.js";
import { recipeHandlers } from "./handlers/recipes.js";
import { workItemHandlers } from "./handlers/work-items.js";
import { BlobStore } from "./store/blob-store.js";
import { migrations } from "./store/migrations.js";

/** The Object Store bucket of a deployment: configured, or derived from the subject prefix. */
export function artifactBucket(config: { ARTIFACT_BUCKET: string; NATS_SUBJECT_PREFIX: string }): string {
  return config.ARTIFACT_BUCKET || `${config.NATS_SUBJECT_PREFIX}_artifacts`;
}

/**
 * The workitem service: work items and their state machine, tool recipes, approvals of risky
 * work and run artifacts, on its own Postgres schema, with every change announced through the
 * transactional outbox and artifact bytes in a NATS Object Store bucket.
 */
export const workitemService: ServiceDefinition<WorkitemConfigSpec> = {
  name: "workitem",
  config: workitemConfigSpec,
  migrations,
  nats: true,
  setup(host) {
    const { config } = host;
    let blobs: BlobStore | undefined;
    const deps: Deps = {
      pool: host.pool,
      events: new Events(host.nats.subjects),
      logger: host.logger,
      blobs: () => {
        if (!blobs) throw new Error("artifact store not started");
        return blobs;
      },
      limits: { artifactMaxBytes: config.ARTIFACT_MAX_BYTES },
      leases: agentManagerLeases(
        host.client(
          AgentManagerService,
          config.AGENT_MANAGER_ADDR.split(",")
            .map((a) => a.trim())
            .filter((a) => a !== ""),
        ),
        config.DOWNSTREAM_TIMEOUT,
      ),
      now: () => new Date(),
    };
    // Components start after Postgres and NATS are up, and stop before they close.
    host.addComponent("artifact-store", {
      start: async () => {
        blobs = await BlobStore.open(
          host.nats.nc,
          host.nats.jsm,
          artifactBucket(config),
          config.ARTIFACT_CHUNK_BYTES,
        );
      },
      stop: async () => {},
    });
    const sweeper = new Sweeper(deps, config.SWEEP_INTERVAL, config.ARTIFACT_TEMP_MAX_AGE);
    host.addComponent("sweeper", { start: async () => sweeper.start(), stop: () => sweeper.stop() });
    host.server.add(WorkItemService, {
      ...workItemHandlers(deps),
      ...listWorkItemsHandler(deps),
      ...lifecycleHandlers(deps),
      ...recipeHandlers(deps),
      ...approvalHandlers(deps),
      ...policyHandlers(deps),
      ...artifactHandlers(deps),
    });
  },
};
