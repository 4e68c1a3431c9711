import { Counter } from "prom-client";
import { NotificationService } from "../../gen/codex/notification/v1/notification_service_pb.js";
import { SecretBox } from "../../mesh/crypto/secret-box.js";
import type { ServiceDefinition } from "../../mesh/service-host.js";
import { createSender } from "./channels/senders.js";
import { notificationConfigSpec } from "./config.js";
import { createEventConsumers } from "./events/consumer.js";
import { EventStager } from "./events/emit.js";
import { loadEventRegistry } from "./events/registry.js";
import { SubscriptionCache } from "./events/subscription-cache.js";
import { notificationHandlers } from "./handlers/index.js";
import { migrations } from "./store/migrations.js";
import { DeliveryWorker } from "./worker/delivery-worker.js";
import { RetentionSweeper } from "./worker/retention-sweeper.js";

/**
 * The notification service: subscriptions over gRPC, durable event consumers that turn events
 * into deliveries (one per event and subscription), and a delivery worker that sends them with
 * retries, dead letters and the events announcing each result.
 *
 * Components stop in reverse order of adding: consumers first (no new deliveries), then the
 * worker (in-flight sends finish or hand their claims back), then the sender's connections.
 * The consumers match events against an in-memory subscription index, loaded before they start.
 */
export const notificationService: ServiceDefinition<typeof notificationConfigSpec> = {
  name: "notification",
  config: notificationConfigSpec,
  migrations,
  nats: true,
  async setup(host) {
    const c = host.config;
    if (c.DELIVERY_LEASE <= c.DELIVERY_TIMEOUT) {
      throw new Error("DELIVERY_LEASE must be longer than DELIVERY_TIMEOUT (a lease may not lapse mid-send)");
    }
    const registry = await loadEventRegistry();
    const box = SecretBox.fromBase64(c.NOTIFICATION_ENCRYPTION_KEY, "NOTIFICATION_ENCRYPTION_KEY");
    const stager = new EventStager(host.nats.subjects);
    const subscriptions = new SubscriptionCache({
      pool: host.pool,
      refreshMs: c.SUBSCRIPTION_REFRESH_INTERVAL,
      logger: host.logger,
    });
    const targets = {
      allowHttp: c.WEBHOOK_ALLOW_HTTP,
      allowPrivateTargets: c.WEBHOOK_ALLOW_PRIVATE_TARGETS,
      slackHosts: c.SLACK_ALLOWED_HOSTS,
    };
    const sender = createSender({
      timeoutMs: c.DELIVERY_TIMEOUT,
      allowPrivateTargets: c.WEBHOOK_ALLOW_PRIVATE_TARGETS,
      smtpUrl: c.SMTP_URL,
      smtpFrom: c.SMTP_FROM,
    });
    const attempts = new Counter({
      name: "notification_delivery_attempts_total",
      help: "Delivery attempts recorded, by channel and outcome.",
      labelNames: ["channel", "outcome"] as const,
      registers: [host.metrics.registry],
    });
    const worker = new DeliveryWorker({
      pool: host.pool,
      sender,
      registry,
      box,
      stager,
      policy: {
        maxAttempts: c.DELIVERY_MAX_ATTEMPTS,
        baseMs: c.DELIVERY_BACKOFF_BASE,
        capMs: c.DELIVERY_BACKOFF_CAP,
      },
      leaseMs: c.DELIVERY_LEASE,
      pollMs: c.WORKER_POLL_INTERVAL,
      concurrency: c.WORKER_CONCURRENCY,
      consoleUrl: c.CONSOLE_URL,
      logger: host.logger,
      onAttempt: (channel, outcome) => attempts.inc({ channel, outcome }),
    });
    host.server.add(
      NotificationService,
      notificationHandlers({
        pool: host.pool,
        box,
        stager,
        registry,
        sender,
        targets,
        maxSubscriptionsPerProject: c.MAX_SUBSCRIPTIONS_PER_PROJECT,
        consoleUrl: c.CONSOLE_URL,
        logger: host.logger,
        wakeWorker: () => worker.wake(),
        subscriptionsChanged: () => subscriptions.changed(),
      }),
    );
    const sweeper = new RetentionSweeper({
      pool: host.pool,
      retentionMs: c.DELIVERY_RETENTION,
      intervalMs: 10 * 60_000,
      logger: host.logger,
    });
    host.addComponent("retention-sweeper", { start: () => sweeper.start(), stop: () => sweeper.stop() });
    host.addComponent("notification-sender", { stop: () => sender.close() });
    host.addComponent("delivery-worker", { start: () => worker.start(), stop: (ctx) => worker.stop(ctx) });
    host.addComponent("subscription-index", {
      start: () => subscriptions.start(),
      stop: async () => subscriptions.stop(),
    });
    const consumers = createEventConsumers({
      nc: host.nats.nc,
      subjects: host.nats.subjects,
      pool: host.pool,
      registry,
      subscriptions,
      ackWaitMs: c.CONSUMER_ACK_WAIT,
      logger: host.logger,
      onDeliveries: () => worker.wake(),
    });
    consumers.forEach((consumer, i) => {
      host.addComponent(`event-consumer-${i}`, {
        start: () => consumer.start(),
        stop: () => consumer.stop(),
      });
    });
  },
};
