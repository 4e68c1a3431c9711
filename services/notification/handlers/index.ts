import type { NotificationService } from "../../../gen/codex/notification/v1/notification_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { deliveryHandlers } from "./deliveries.js";
import type { HandlerDeps } from "./deps.js";
import { subscriptionHandlers } from "./subscriptions.js";
import { testSubscriptionHandler } from "./test-subscription.js";

export type { HandlerDeps } from "./deps.js";

/** The NotificationService implementation. */
export function notificationHandlers(d: HandlerDeps): ServiceImpl<typeof NotificationService> {
  return { ...subscriptionHandlers(d), ...deliveryHandlers(d), ...testSubscriptionHandler(d) };
}
