import type { ProjectService } from "../../../gen/codex/project/v1/project_service_pb.js";
import { QuotaWindow, ReservationState } from "../../../gen/codex/project/v1/quota_pb.js";
import { invalidArgument, notFound, resourceExhausted, type ServiceError } from "../../../mesh/errors.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { LIMITS } from "../domain/limits.js";
import {
  dailyUtcWindow,
  exceededLimit,
  type LimitName,
  msUntilReset,
  type Usage,
} from "../domain/quota-window.js";
import { Violations } from "../domain/validation.js";
import { quotaExhausted, quotaSet, runSlotReleased, runSlotReserved } from "../events.js";
import { limitsOf, quotaMessage, reservationMessage, usageMessage } from "../resources.js";
import { getProject } from "../store/projects.js";
import {
  expireHeld,
  getQuotaRow,
  getReservation,
  insertReservation,
  type QuotaRow,
  type ReservationRow,
  saveQuotaRow,
  saveReservationState,
  usageCounts,
} from "../store/quotas.js";
import { access, callerOf, type Deps, inTransaction, requireInternal, type Tx } from "./context.js";
import { assertActive, assertEtag } from "./preconditions.js";
import { ttlMs } from "./ttl.js";

type Impl = ServiceImpl<typeof ProjectService>;

/** Loads and locks the quota row: the per-project serialization point of reservations. */
async function lockQuota(tx: Tx, projectId: string): Promise<QuotaRow> {
  const quota = await getQuotaRow(tx.client, projectId, true);
  if (!quota) throw notFound("project", projectId);
  return quota;
}

/**
 * Releases HELD reservations past their expire_time as EXPIRED (lazily, by whoever holds
 * the lock next) and publishes one RunSlotReleased each. Returns usage after expiry.
 */
async function expireAndCount(tx: Tx, quota: QuotaRow): Promise<Usage> {
  const window = dailyUtcWindow(tx.now);
  const expired = await expireHeld(tx.client, quota.projectId, tx.now);
  const usage = await usageCounts(tx.client, quota.projectId, window.start, tx.now);
  for (const [i, r] of expired.entries()) {
    quota.eventSeq += 1n;
    const held = usage.concurrentInUse + (expired.length - 1 - i);
    await tx.emit(runSlotReleased(quota, r, { runsUsed: usage.runsUsed, concurrentInUse: held }));
  }
  return usage;
}

export function quotaHandlers(
  deps: Deps,
): Pick<Impl, "setQuota" | "getQuota" | "reserveRunSlot" | "releaseRunSlot"> {
  return {
    async setQuota(req, ctx) {
      const principal = callerOf(ctx);
      const v = new Violations().uuid("project_id", req.projectId);
      const q = req.quota;
      if (!q) v.add("quota", "is required");
      else {
        if (q.runsPerDay < 0 || q.runsPerDay > LIMITS.runsPerDayMax) {
          v.add("quota.runs_per_day", `must be 0 (unlimited) to ${LIMITS.runsPerDayMax}`);
        }
        if (q.maxConcurrentRuns < 0 || q.maxConcurrentRuns > LIMITS.maxConcurrentRunsMax) {
          v.add("quota.max_concurrent_runs", `must be 0 (unlimited) to ${LIMITS.maxConcurrentRunsMax}`);
        }
        v.enumValue("quota.window", q.window, [QuotaWindow.DAILY_UTC], true);
      }
      v.throwIfAny("invalid SetQuota request");
      const input = q!;
      return inTransaction(deps, ctx, principal, async (tx) => {
        const { project } = await access(tx.client, principal, req.projectId, "SetQuota");
        assertActive(project);
        const quota = await lockQuota(tx, project.id);
        assertEtag(input.etag, "quota", quota.projectId, quota.version, "quota");
        const next: QuotaRow = {
          ...quota,
          runsPerDay: input.runsPerDay,
          maxConcurrentRuns: input.maxConcurrentRuns,
          window: QuotaWindow.DAILY_UTC,
          updatedBy: principal.id,
          updateTime: tx.now,
          version: quota.version + 1n,
          eventSeq: quota.eventSeq + 1n,
          // New limits deserve new alerts.
          runsExhaustedWindow: null,
          concurrencyExhaustedWindow: null,
        };
        await saveQuotaRow(tx.client, next);
        await tx.emit(quotaSet(next, limitsOf(next, deps.defaults)));
        return { quota: quotaMessage(next, deps.defaults) };
      });
    },

    async getQuota(req, ctx) {
      const principal = callerOf(ctx);
      new Violations().uuid("project_id", req.projectId).throwIfAny("invalid GetQuota request");
      const { project } = await access(deps.pool, principal, req.projectId, "GetQuota");
      const quota = await getQuotaRow(deps.pool, project.id);
      if (!quota) throw notFound("project", project.id);
      const now = deps.now();
      const window = dailyUtcWindow(now);
      // Counting only unexpired HELD rows gives the right answer without writing on a read.
      const usage = await usageCounts(deps.pool, project.id, window.start, now);
      const limits = limitsOf(quota, deps.defaults);
      return { quota: quotaMessage(quota, deps.defaults), usage: usageMessage(limits, usage, window) };
    },

    async reserveRunSlot(req, ctx) {
      const principal = callerOf(ctx);
      requireInternal(principal, "ReserveRunSlot");
      const v = new Violations().uuid("project_id", req.projectId);
      v.length("reservation_key", req.reservationKey, 1, LIMITS.reservationKeyMax);
      if (/\p{Cc}/u.test(req.reservationKey)) v.add("reservation_key", "must not contain control characters");
      v.length("work_item_id", req.workItemId, 1, LIMITS.workItemIdMax);
      const ttl = ttlMs(v, req.ttl);
      v.throwIfAny("invalid ReserveRunSlot request");
      const outcome = await inTransaction(deps, ctx, principal, async (tx) => {
        const project = await getProject(tx.client, req.projectId);
        if (!project) throw notFound("project", req.projectId);
        assertActive(project);
        const quota = await lockQuota(tx, project.id);
        const seqBefore = quota.eventSeq;
        const window = dailyUtcWindow(tx.now);
        const limits = limitsOf(quota, deps.defaults);
        let usage = await expireAndCount(tx, quota);
        const existing = await getReservation(tx.client, project.id, req.reservationKey);
        let result: { reservation: ReservationRow } | { refusal: ServiceError };
        if (existing) {
          if (existing.workItemId !== req.workItemId) {
            throw invalidArgument("reservation_key is already used for another work item", [
              {
                field: "reservation_key",
                description: `already reserves a slot for work item "${existing.workItemId}"`,
              },
            ]);
          }
          result = { reservation: existing };
        } else {
          const limit = exceededLimit(limits, usage);
          if (limit) {
            await noteExhaustion(
              tx,
              quota,
              limit,
              limits[limit === "runs_per_day" ? "runsPerDay" : "maxConcurrentRuns"],
            );
            const retryAfterMs =
              limit === "runs_per_day" ? msUntilReset(tx.now, window) : deps.concurrencyRetryMs;
            result = {
              refusal: resourceExhausted(`project "${project.name}" reached its ${limit} quota`, {
                subject: `project:${project.id}`,
                description: limit,
                retryAfterMs,
              }),
            };
          } else {
            const reservation: ReservationRow = {
              projectId: project.id,
              key: req.reservationKey,
              workItemId: req.workItemId,
              state: ReservationState.HELD,
              windowStart: window.start,
              windowReset: window.reset,
              createTime: tx.now,
              expireTime: new Date(tx.now.getTime() + ttl),
              releaseTime: null,
            };
            await insertReservation(tx.client, reservation);
            usage = { runsUsed: usage.runsUsed + 1, concurrentInUse: usage.concurrentInUse + 1 };
            quota.eventSeq += 1n;
            await tx.emit(runSlotReserved(quota, reservation, usage));
            result = { reservation };
          }
        }
        if (quota.eventSeq !== seqBefore) await saveQuotaRow(tx.client, quota);
        return { result, usage: usageMessage(limits, usage, window) };
      });
      // A refusal is thrown only after commit, so expiries and QuotaExhausted still persist.
      if ("refusal" in outcome.result) throw outcome.result.refusal;
      return { reservation: reservationMessage(outcome.result.reservation), usage: outcome.usage };
    },

    async releaseRunSlot(req, ctx) {
      const principal = callerOf(ctx);
      requireInternal(principal, "ReleaseRunSlot");
      const v = new Violations().uuid("project_id", req.projectId);
      v.length("reservation_key", req.reservationKey, 1, LIMITS.reservationKeyMax);
      v.throwIfAny("invalid ReleaseRunSlot request");
      return inTransaction(deps, ctx, principal, async (tx) => {
        // Releasing stays possible on an archived project: it only frees what was held.
        const project = await getProject(tx.client, req.projectId);
        if (!project) throw notFound("project", req.projectId);
        const quota = await lockQuota(tx, project.id);
        const seqBefore = quota.eventSeq;
        const usage = await expireAndCount(tx, quota);
        const reservation = await getReservation(tx.client, project.id, req.reservationKey);
        if (!reservation) throw notFound("reservation", `${project.id}/${req.reservationKey}`);
        let final = reservation;
        if (reservation.state === ReservationState.HELD) {
          final = {
            ...reservation,
            state: req.consumed ? ReservationState.CONSUMED : ReservationState.REFUNDED,
            releaseTime: tx.now,
          };
          await saveReservationState(tx.client, final);
          const sameWindow = reservation.windowStart.getTime() === dailyUtcWindow(tx.now).start.getTime();
          const after: Usage = {
            runsUsed: usage.runsUsed - (!req.consumed && sameWindow ? 1 : 0),
            concurrentInUse: usage.concurrentInUse - 1,
          };
          quota.eventSeq += 1n;
          await tx.emit(runSlotReleased(quota, final, after));
        }
        if (quota.eventSeq !== seqBefore) await saveQuotaRow(tx.client, quota);
        return { reservation: reservationMessage(final) };
      });
    },
  };
}

/** Publishes QuotaExhausted at most once per limit per window (the row remembers the window). */
async function noteExhaustion(tx: Tx, quota: QuotaRow, limit: LimitName, value: number): Promise<void> {
  const window = dailyUtcWindow(tx.now);
  const field = limit === "runs_per_day" ? "runsExhaustedWindow" : "concurrencyExhaustedWindow";
  if (quota[field]?.getTime() === window.start.getTime()) return;
  quota[field] = window.start;
  quota.eventSeq += 1n;
  await tx.emit(quotaExhausted(quota, limit, value, limit === "runs_per_day" ? window.reset : undefined));
}
