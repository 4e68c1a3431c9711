import { AuditService } from "../../gen/codex/audit/v1/audit_service_pb.js";
import type { ServiceDefinition } from "../../mesh/service-host.js";
import { auditConfigSpec } from "./config.js";
import { AuditConsumer } from "./events/consumer.js";
import { auditServiceImpl } from "./handlers/audit-service.js";
import { auditMigrations } from "./store/migrations.js";

/** How often the consumer lag gauge is refreshed. */
const LAG_INTERVAL_MS = 5_000;

/**
 * The audit service: an append-only, hash-chained trail of every event, fed by its own durable
 * consumers and read through the AuditService API (docs/adr/0008-audit-trail.md).
 */
export const auditService: ServiceDefinition<typeof auditConfigSpec> = {
  name: "audit",
  config: auditConfigSpec,
  migrations: auditMigrations,
  nats: true,
  setup(host) {
    const { config, logger, pool, nats } = host;
    const consumer = new AuditConsumer({
      nc: nats.nc,
      pool,
      subjects: nats.subjects,
      logger,
      maxDeliver: config.AUDIT_MAX_DELIVER,
      ackWaitMs: config.AUDIT_ACK_WAIT_MS,
    });
    host.addComponent("audit-consumer", consumer);
    let lag: NodeJS.Timeout | undefined;
    host.addComponent("audit-consumer-lag", {
      start: async () => {
        lag = setInterval(() => {
          consumer.pending().then(
            (n) => host.metrics.consumer.setLag("audit", n),
            () => {},
          );
        }, LAG_INTERVAL_MS);
        lag.unref();
      },
      stop: async () => clearInterval(lag),
    });
    host.server.add(
      AuditService,
      auditServiceImpl({
        pool,
        subjects: nats.subjects,
        logger,
        batchSize: config.AUDIT_BATCH_SIZE,
        chunkBytes: config.AUDIT_EXPORT_CHUNK_BYTES,
        activeExports: new Set(),
      }),
    );
  },
};
