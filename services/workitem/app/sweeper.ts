import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ApprovalExpiredSchema } from "../../../gen/codex/events/v1/workitem_events_pb.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import { approvalCount } from "../domain/approval.js";
import { SYSTEM_ACTOR } from "../events.js";
import { expiredPendingIds, getApproval, setApprovalState } from "../store/approvals.js";
import { getWorkItem } from "../store/work-items.js";
import type { Deps } from "./deps.js";
import { saveReassessed } from "./gate.js";
import { requestIds } from "./mutation.js";

/**
 * Persists expiries: a PENDING request past its expire_time becomes EXPIRED (its item's
 * approval_status too, when it is the item's latest request) and ApprovalExpired is emitted
 * once. Decisions already refuse expired requests on their own; this makes the state and the
 * event visible without anyone having to touch the request.
 */
export async function expireApprovals(deps: Deps, batch = 100): Promise<number> {
  let expired = 0;
  for (const id of await expiredPendingIds(deps.pool, deps.now(), batch)) {
    const done = await withTransaction(deps.pool, async (tx) => {
      const peek = await getApproval(tx, id);
      if (!peek) return false;
      const item = await getWorkItem(tx, peek.workItemId, true);
      const request = await getApproval(tx, id, true);
      const at = deps.now();
      if (!item || !request || request.state !== "PENDING" || request.expireTime > at) return false;
      await setApprovalState(tx, id, "EXPIRED", at);
      await deps.events.stage(tx, SYSTEM_ACTOR, {
        schema: ApprovalExpiredSchema,
        payload: create(ApprovalExpiredSchema, {
          approvalRequestId: id,
          workItemId: request.workItemId,
          expireTime: timestampFromDate(request.expireTime),
          approvalsCount: approvalCount(request.decisions),
          requiredApprovals: request.requiredApprovals,
        }),
        aggregateType: "approval_request",
        aggregateId: id,
        aggregateVersion: request.version + 1,
        projectId: request.projectId,
        at,
      });
      if (item.approvalRequestId === id && item.approvalStatus === "PENDING") {
        item.approvalStatus = "EXPIRED";
        await saveReassessed(tx, deps, SYSTEM_ACTOR, item, at);
      }
      return true;
    });
    if (done) expired++;
  }
  return expired;
}

/** Background housekeeping on a fixed timer: expiries, old request ids, abandoned uploads. */
export class Sweeper {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #lastTempSweep = 0;

  constructor(
    private readonly deps: Deps,
    private readonly intervalMs: number,
    private readonly tempMaxAgeMs: number,
  ) {}

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#running) return; // never overlap: a slow sweep skips a beat
      this.#running = this.sweepOnce()
        .catch((err: unknown) =>
          this.deps.logger.warn({ err }, "workitem sweep failed; retrying next interval"),
        )
        .finally(() => {
          this.#running = undefined;
        });
    }, this.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  async sweepOnce(): Promise<void> {
    await expireApprovals(this.deps);
    const now = this.deps.now();
    await requestIds.purgeExpired(this.deps.pool, now);
    if (now.getTime() - this.#lastTempSweep >= this.tempMaxAgeMs / 2) {
      this.#lastTempSweep = now.getTime();
      await this.deps.blobs().sweepTemp(this.tempMaxAgeMs, now.getTime());
    }
  }
}
