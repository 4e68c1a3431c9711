import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  RedeliverDeadLetterRequestSchema,
  RedeliverDeadLetterResponseSchema,
} from "../../../gen/codex/notification/v1/delivery_pb.js";
import type { NotificationService } from "../../../gen/codex/notification/v1/notification_service_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { failedPrecondition, invalidArgument, notFound } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { readableProjects } from "../domain/authz.js";
import {
  attemptToProto,
  DL_STATE_NAME,
  deadLetterToProto,
  listAttempts,
  listDeadLetters,
  OUTCOME_NAME,
} from "../store/history.js";
import { redeliverDeadLetter } from "../store/redeliver.js";
import type { HandlerDeps } from "./deps.js";
import { authorize, isUuid, loadSubscription, missingSubscription, principalOf } from "./guard.js";
import { idempotent } from "./idempotent.js";
import { listPageTokens, PAGE_SIZES, seqOf } from "./paging.js";

type Impl = ServiceImpl<typeof NotificationService>;

/**
 * Scope of a listing: one subscription (read access on its project, deleted ones included so
 * their history stays readable) or "-" for everything the caller may read.
 */
async function scope(
  d: HandlerDeps,
  p: Principal,
  subscriptionId: string,
  projectId: string,
): Promise<{ subscriptionId?: string; projects: "all" | string[] }> {
  if (subscriptionId === "") {
    throw invalidArgument("subscription_id is required", [
      { field: "subscription_id", description: 'is required ("-" for all)' },
    ]);
  }
  if (subscriptionId !== "-") {
    const sub = await loadSubscription(d.pool, subscriptionId, { includeDeleted: true });
    if (sub === undefined) throw missingSubscription(p, subscriptionId);
    authorize(p, sub.projectId, "read");
    return { subscriptionId, projects: "all" };
  }
  if (projectId !== "") {
    authorize(p, projectId, "read");
    return { projects: readableProjects(p) === "all" ? "all" : [projectId] };
  }
  return { projects: readableProjects(p) };
}

export function deliveryHandlers(
  d: HandlerDeps,
): Pick<Impl, "listDeliveries" | "listDeadLetters" | "redeliverDeadLetter"> {
  return {
    async listDeliveries(req, ctx) {
      const p = principalOf(ctx);
      const start = req.startTime ? timestampDate(req.startTime) : undefined;
      const end = req.endTime ? timestampDate(req.endTime) : undefined;
      if (start && end && end < start) {
        throw invalidArgument("end_time is before start_time", [
          { field: "end_time", description: "must not be before start_time" },
        ]);
      }
      const s = await scope(d, p, req.subscriptionId, req.projectId);
      const filters = {
        s: req.subscriptionId,
        o: req.outcome,
        e: req.eventId,
        p: req.projectId,
        a: start?.toISOString(),
        b: end?.toISOString(),
      };
      const pages = listPageTokens(filters, 1);
      const limit = clampPageSize(req.pageSize, PAGE_SIZES);
      const rows = await listAttempts(d.pool, {
        ...s,
        outcome: OUTCOME_NAME[req.outcome],
        eventId: req.eventId,
        projectId: req.projectId,
        start,
        end,
        beforeSeq: seqOf(pages.keyOf(req.pageToken)),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        deliveries: page.map(attemptToProto),
        nextPageToken: rows.length > limit && last ? pages.encode([last.seq.toString()]) : "",
      };
    },

    async listDeadLetters(req, ctx) {
      const p = principalOf(ctx);
      const s = await scope(d, p, req.subscriptionId, req.projectId);
      const filters = { s: req.subscriptionId, st: req.state, p: req.projectId };
      const pages = listPageTokens(filters, 2);
      const cursor = pages.keyOf(req.pageToken);
      const limit = clampPageSize(req.pageSize, PAGE_SIZES);
      const rows = await listDeadLetters(d.pool, {
        ...s,
        state: DL_STATE_NAME[req.state],
        projectId: req.projectId,
        before: cursor ? { time: new Date(cursor[0] ?? ""), id: cursor[1] ?? "" } : undefined,
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        deadLetters: page.map(deadLetterToProto),
        nextPageToken:
          rows.length > limit && last ? pages.encode([last.dead_letter_time.toISOString(), last.id]) : "",
      };
    },

    async redeliverDeadLetter(req, ctx) {
      const p = principalOf(ctx);
      const sub = await loadSubscription(d.pool, req.subscriptionId, { includeDeleted: true });
      if (sub === undefined) throw missingSubscription(p, req.subscriptionId);
      authorize(p, sub.projectId, "maintain");
      if (sub.deleteTime !== null || !sub.enabled) {
        throw failedPrecondition(
          `subscription is ${sub.deleteTime !== null ? "deleted" : "disabled"}`,
          [{ type: "STATE", subject: `subscriptions/${sub.id}`, description: "must exist and be enabled" }],
          "SUBSCRIPTION_NOT_ACTIVE",
        );
      }
      const res = await idempotent(
        d.pool,
        p,
        "RedeliverDeadLetter",
        { schema: RedeliverDeadLetterRequestSchema, message: req, requestId: req.requestId },
        RedeliverDeadLetterResponseSchema,
        async (c) => {
          if (!isUuid(req.deadLetterId)) throw notFound("dead letter", req.deadLetterId);
          const r = await redeliverDeadLetter(c, sub.id, req.deadLetterId, p.id);
          if (!r.ok && r.reason === "not_found") throw notFound("dead letter", req.deadLetterId);
          if (!r.ok) {
            throw failedPrecondition(
              "dead letter is not OPEN",
              [{ type: "STATE", subject: `deadLetters/${req.deadLetterId}`, description: "must be OPEN" }],
              "DEAD_LETTER_NOT_OPEN",
            );
          }
          return { deadLetter: deadLetterToProto(r.deadLetter), delivery: attemptToProto(r.delivery) };
        },
      );
      d.wakeWorker();
      return res;
    },
  };
}
