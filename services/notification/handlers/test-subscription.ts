import {
  TestSubscriptionRequestSchema,
  TestSubscriptionResponseSchema,
} from "../../../gen/codex/notification/v1/delivery_pb.js";
import type { NotificationService } from "../../../gen/codex/notification/v1/notification_service_pb.js";
import { invalidArgument, resourceExhausted } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { SendAborted, type SendResult } from "../channels/types.js";
import { alertKindName, formatDuration } from "../domain/alert-rules.js";
import { sampleEnvelope, sampleType } from "../events/sample-event.js";
import { attemptToProto, countTestAttempts, insertTestAttempt } from "../store/history.js";
import { prepareNotification, targetOf } from "../worker/prepare.js";
import type { HandlerDeps } from "./deps.js";
import { authorize, loadSubscription, missingSubscription, principalOf } from "./guard.js";
import { idempotent } from "./idempotent.js";

type Impl = ServiceImpl<typeof NotificationService>;

const TESTS_PER_MINUTE = 10;

/**
 * TestSubscription: one synthetic event through the subscription now, even when disabled; the
 * outcome is reported in the response (test = true; never retried or dead-lettered, and no
 * NotificationDelivered is published).
 */
export function testSubscriptionHandler(d: HandlerDeps): Pick<Impl, "testSubscription"> {
  return {
    async testSubscription(req, ctx) {
      const p = principalOf(ctx);
      const sub = await loadSubscription(d.pool, req.subscriptionId);
      if (sub === undefined) throw missingSubscription(p, req.subscriptionId);
      authorize(p, sub.projectId, "maintain");
      const type = sampleType(req.eventType, sub.eventTypes);
      const envelope = sampleEnvelope(d.registry, type, sub.projectId, p);
      if (envelope === undefined) {
        throw invalidArgument(`unknown event type ${type}`, [
          { field: "event_type", description: "is not a known event type" },
        ]);
      }
      return idempotent(
        d.pool,
        p,
        "TestSubscription",
        { schema: TestSubscriptionRequestSchema, message: req, requestId: req.requestId },
        TestSubscriptionResponseSchema,
        async (c) => {
          await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`notification:test:${sub.id}`]);
          const since = new Date(Date.now() - 60_000);
          const recent = await countTestAttempts(c, sub.id, since);
          if (recent.n >= TESTS_PER_MINUTE) {
            const retryAfterMs = Math.max(
              1_000,
              (recent.oldest?.getTime() ?? Date.now()) + 60_000 - Date.now(),
            );
            throw resourceExhausted(`at most ${TESTS_PER_MINUTE} tests per subscription per minute`, {
              subject: `subscriptions/${sub.id}`,
              description: `${TESTS_PER_MINUTE} TestSubscription calls per minute`,
              retryAfterMs,
            });
          }
          const alert = sub.alertRule
            ? {
                kind: alertKindName(sub.alertRule.kind),
                count: sub.alertRule.threshold,
                threshold: sub.alertRule.threshold,
                window: formatDuration(sub.alertRule.windowMs),
                key: "sample",
              }
            : undefined;
          const n = prepareNotification(sub, envelope, alert, envelope.id, d.registry, d.consoleUrl);
          let result: SendResult;
          try {
            result = await d.sender.send(targetOf(sub, d.box), n, ctx.signal);
          } catch (err) {
            if (err instanceof SendAborted) throw err;
            d.logger.error({ err, subscriptionId: sub.id }, "test delivery could not be prepared");
            result = {
              ok: false,
              statusCode: 0,
              error: "delivery could not be prepared",
              retryable: false,
              latencyMs: 0,
            };
          }
          const row = await insertTestAttempt(c, {
            delivery_key: n.deliveryKey,
            subscription_id: sub.id,
            event_id: envelope.id,
            event_type: envelope.type,
            project_id: sub.projectId,
            outcome: result.ok ? "succeeded" : "failed",
            status_code: result.statusCode,
            latency_ms: Math.round(result.latencyMs),
            error: result.error,
          });
          return { delivery: attemptToProto(row), renderedBody: n.body, renderedSubject: n.subject };
        },
      );
    },
  };
}
