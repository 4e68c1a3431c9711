import { randomUUID } from "node:crypto";
import type { NotificationService } from "../../../gen/codex/notification/v1/notification_service_pb.js";
import {
  ChannelType,
  CreateSubscriptionRequestSchema,
  CreateSubscriptionResponseSchema,
} from "../../../gen/codex/notification/v1/subscription_pb.js";
import { aborted, invalidArgument, notFound, resourceExhausted } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { readableProjects } from "../domain/authz.js";
import { etagOf, toProto } from "../store/subscription-record.js";
import {
  countLiveSubscriptions,
  deleteSubscription,
  insertSubscription,
  listSubscriptions,
  updateSubscription,
} from "../store/subscriptions.js";
import type { HandlerDeps } from "./deps.js";
import { authorize, loadSubscription, missingSubscription, principalOf } from "./guard.js";
import { idempotent } from "./idempotent.js";
import { listPageTokens, PAGE_SIZES, seqOf } from "./paging.js";
import { writeForCreate, writeForUpdate } from "./subscription-input.js";

type Impl = ServiceImpl<typeof NotificationService>;
type SubscriptionHandlers = Pick<
  Impl,
  "createSubscription" | "getSubscription" | "listSubscriptions" | "updateSubscription" | "deleteSubscription"
>;

const CHANNEL_NAMES = {
  [ChannelType.WEBHOOK]: "webhook",
  [ChannelType.SLACK]: "slack",
  [ChannelType.EMAIL]: "email",
} as const;

/** Create, get, list, update and delete. Every change stages its event in the same transaction. */
export function subscriptionHandlers(d: HandlerDeps): SubscriptionHandlers {
  return {
    async createSubscription(req, ctx) {
      const p = principalOf(ctx);
      const input = req.subscription;
      if (input === undefined) {
        throw invalidArgument("subscription is required", [
          { field: "subscription", description: "is required" },
        ]);
      }
      authorize(p, input.projectId, "maintain");
      const id = randomUUID();
      const write = writeForCreate(id, input, d.box, d.targets);
      const response = await idempotent(
        d.pool,
        p,
        "CreateSubscription",
        { schema: CreateSubscriptionRequestSchema, message: req, requestId: req.requestId },
        CreateSubscriptionResponseSchema,
        async (c) => {
          if (input.projectId !== "") {
            await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [
              `notification:project:${input.projectId}`,
            ]);
            if ((await countLiveSubscriptions(c, input.projectId)) >= d.maxSubscriptionsPerProject) {
              throw resourceExhausted(
                `project ${input.projectId} has ${d.maxSubscriptionsPerProject} subscriptions`,
                {
                  subject: `project/${input.projectId}`,
                  description: `at most ${d.maxSubscriptionsPerProject} subscriptions per project`,
                },
              );
            }
          }
          const rec = await insertSubscription(c, id, input.projectId, p.id, write);
          await d.stager.created(c, rec, { principal: p, correlationId: ctx.correlationId });
          return { subscription: toProto(rec) };
        },
      );
      d.subscriptionsChanged();
      return response;
    },

    async getSubscription(req, ctx) {
      const p = principalOf(ctx);
      const rec = await loadSubscription(d.pool, req.subscriptionId, { includeDeleted: true });
      if (rec === undefined) throw missingSubscription(p, req.subscriptionId);
      authorize(p, rec.projectId, "read");
      if (rec.deleteTime !== null) throw notFound("subscription", req.subscriptionId);
      return { subscription: toProto(rec) };
    },

    async listSubscriptions(req, ctx) {
      const p = principalOf(ctx);
      let projects: "all" | string[];
      if (req.projectId !== "") {
        authorize(p, req.projectId, "read");
        projects = [req.projectId];
      } else {
        projects = readableProjects(p);
      }
      const filters = {
        projectId: req.projectId,
        enabled: req.enabled,
        channelType: req.channelType,
        eventType: req.eventType,
      };
      const pages = listPageTokens(filters, 1);
      const limit = clampPageSize(req.pageSize, PAGE_SIZES);
      const rows = await listSubscriptions(d.pool, {
        projects,
        enabled: req.enabled,
        channelType: CHANNEL_NAMES[req.channelType as keyof typeof CHANNEL_NAMES],
        eventType: req.eventType,
        beforeSeq: seqOf(pages.keyOf(req.pageToken)),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        subscriptions: page.map(toProto),
        nextPageToken: rows.length > limit && last ? pages.encode([last.seq.toString()]) : "",
      };
    },

    async updateSubscription(req, ctx) {
      const p = principalOf(ctx);
      const input = req.subscription;
      if (input === undefined || input.id === "") {
        throw invalidArgument("subscription.id is required", [
          { field: "subscription.id", description: "is required" },
        ]);
      }
      const paths = req.updateMask?.paths ?? [];
      const response = await withTransaction(d.pool, async (c) => {
        const current = await loadSubscription(c, input.id, { forUpdate: true });
        if (current === undefined) throw missingSubscription(p, input.id);
        authorize(p, current.projectId, "maintain");
        if (input.etag !== "" && input.etag !== etagOf(current.id, current.version)) {
          throw aborted("subscription changed since it was read; get it again and retry");
        }
        const write = writeForUpdate(current, input, paths, d.box, d.targets);
        const rec = await updateSubscription(c, current.id, write);
        await d.stager.updated(c, rec, [...new Set(paths)], {
          principal: p,
          correlationId: ctx.correlationId,
        });
        return { subscription: toProto(rec) };
      });
      d.subscriptionsChanged();
      return response;
    },

    async deleteSubscription(req, ctx) {
      const p = principalOf(ctx);
      await withTransaction(d.pool, async (c) => {
        const current = await loadSubscription(c, req.subscriptionId, { forUpdate: true });
        if (current === undefined) throw missingSubscription(p, req.subscriptionId);
        authorize(p, current.projectId, "maintain");
        if (req.etag !== "" && req.etag !== etagOf(current.id, current.version)) {
          throw aborted("subscription changed since it was read; get it again and retry");
        }
        const cancelled = await deleteSubscription(c, current.id);
        await d.stager.deleted(c, current, cancelled, { principal: p, correlationId: ctx.correlationId });
      });
      d.subscriptionsChanged();
      return {};
    },
  };
}
