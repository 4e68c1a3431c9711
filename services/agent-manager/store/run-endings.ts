/**
 * Batched run changes that end a lease: completion, rejection, expiry, the cancellation grace
 * running out, and forced release. Every transition into a terminal state stages RunCompleted
 * in the same statement's batch, and only a transition that matched its condition does, so a
 * run's RunCompleted is published exactly once however often its completion is retried.
 */
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { isCompletionReplay } from "../domain/run-state.js";
import { type Origin, selfOrigin } from "../events/origin.js";
import { runCompleted, runLeaseExpired, runRejected } from "../events/run-events.js";
import type { AnswerSecrets } from "./answer-secrets.js";
import { bigints, type ChangedRow, type LeasedItem, leasedOutcomes } from "./batch-support.js";
import { endLogLines, FINALIZE_FLAGS, type Flagged, finalizeRuns } from "./finalize.js";
import type { BatchKind } from "./group-commit.js";
import type { RunRow } from "./runs.js";

export interface CompleteItem extends LeasedItem {
  status: RunState;
  exitCode: number | null;
  error: string;
  origin: Origin;
}

export interface RejectItem extends LeasedItem {
  reason: string;
  origin: Origin;
}

export interface ExpireItem {
  runId: string;
  token: bigint;
  expiredAtMs: number;
}

export interface OverdueItem {
  runId: string;
  token: bigint;
  error: string;
}

export interface ReleaseItem {
  runId: string;
  agentId: string;
  token: bigint;
  reason: string;
  origin: Origin;
}

export interface EndingKinds {
  complete: BatchKind<CompleteItem, { row: RunRow; replay: boolean }>;
  reject: BatchKind<RejectItem, RunRow>;
  expire: BatchKind<ExpireItem, RunRow | undefined>;
  cancelOverdue: BatchKind<OverdueItem, RunRow | undefined>;
  /** Hands a leased run back to PENDING for the agent (undeliverable, deregistered): no expiry counted. */
  release: BatchKind<ReleaseItem, RunRow | undefined>;
}

export function endingKinds(opts: { secrets: AnswerSecrets; maxExpiries: number }): EndingKinds {
  const complete: EndingKinds["complete"] = {
    name: "complete",
    async apply(ctx, items) {
      const { rows } = await ctx.client.query<ChangedRow & Flagged>(
        `UPDATE runs r SET state = u.status, exit_code = u.exit_code, error = u.error, finished_at = $7,
                lease_expire_at = NULL, version = r.version + 1
         FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::smallint[], $5::int[], $6::text[])
              AS u(id, agent_id, token, status, exit_code, error)
         WHERE r.id = u.id AND r.agent_id = u.agent_id AND r.fencing_token = u.token AND r.state IN (2, 3)
         RETURNING r.*, ${FINALIZE_FLAGS}`,
        [
          items.map((i) => i.runId),
          items.map((i) => i.agentId),
          bigints(items.map((i) => i.token)),
          items.map((i) => i.status),
          items.map((i) => i.exitCode),
          items.map((i) => i.error),
          ctx.now,
        ],
      );
      const matched = new Map(rows.map((r) => [r.id, r]));
      for (const item of items) {
        const row = matched.get(item.runId);
        if (row) ctx.stage(runCompleted(row, item.origin, ctx.now));
      }
      await finalizeRuns(ctx, rows, opts.secrets, items[0]?.origin ?? selfOrigin());
      return leasedOutcomes<CompleteItem, { row: RunRow; replay: boolean }>(
        ctx,
        items,
        matched,
        (row) => ({ row, replay: false }),
        (row, item) =>
          isCompletionReplay(
            { state: row.state, fencingToken: row.fencing_token, agentId: row.agent_id },
            item.agentId,
            item.token,
            item.status,
          )
            ? { row, replay: true }
            : undefined,
      );
    },
  };

  const reject: EndingKinds["reject"] = {
    name: "reject",
    async apply(ctx, items) {
      const { rows } = await ctx.client.query<ChangedRow>(
        `UPDATE runs r SET state = 1, rejected_by = array_append(r.rejected_by, u.agent_id), lease_expire_at = NULL,
                version = r.version + 1
         FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS u(id, agent_id, token)
         WHERE r.id = u.id AND r.agent_id = u.agent_id AND r.fencing_token = u.token AND r.state IN (2, 3)
         RETURNING r.*`,
        [items.map((i) => i.runId), items.map((i) => i.agentId), bigints(items.map((i) => i.token))],
      );
      const matched = new Map(rows.map((r) => [r.id, r]));
      for (const item of items) {
        const row = matched.get(item.runId);
        if (row) ctx.stage(runRejected(row, item.agentId, item.reason, item.origin, ctx.now));
      }
      await endLogLines(ctx, [...matched.keys()], opts.secrets);
      return leasedOutcomes(
        ctx,
        items,
        matched,
        (row) => row,
        (row, item) =>
          row.fencing_token === item.token && row.rejected_by.includes(item.agentId) ? row : undefined,
      );
    },
  };

  const expire: EndingKinds["expire"] = {
    name: "expire",
    async apply(ctx, items) {
      const { rows } = await ctx.client.query<ChangedRow & Flagged>(
        `UPDATE runs r SET
           state = CASE WHEN r.cancel_requested THEN 6 WHEN r.lease_expiries + 1 >= $3 THEN 7 ELSE 1 END,
           lease_expiries = r.lease_expiries + 1,
           lease_expire_at = NULL,
           finished_at = CASE WHEN r.cancel_requested OR r.lease_expiries + 1 >= $3 THEN $4::timestamptz END,
           error = CASE
             WHEN r.cancel_requested THEN 'cancelled (' || r.cancel_reason || '); the agent stopped renewing its lease'
             WHEN r.lease_expiries + 1 >= $3 THEN 'lease expired ' || (r.lease_expiries + 1) || ' times; last held by agent ' || r.agent_id
             ELSE r.error END,
           version = r.version + 1
         FROM unnest($1::uuid[], $2::bigint[]) AS u(id, token)
         WHERE r.id = u.id AND r.fencing_token = u.token AND r.state IN (2, 3)
         RETURNING r.*, ${FINALIZE_FLAGS}`,
        [items.map((i) => i.runId), bigints(items.map((i) => i.token)), opts.maxExpiries, ctx.now],
      );
      const matched = new Map(rows.map((r) => [r.id, r]));
      const origin = selfOrigin();
      const ended: Flagged[] = [];
      for (const item of items) {
        const row = matched.get(item.runId);
        if (!row) continue;
        ctx.stage(runLeaseExpired(row, item.token, item.expiredAtMs, origin, ctx.now));
        if (row.state !== RunState.PENDING) {
          ctx.stage(runCompleted(row, origin, ctx.now));
          ended.push(row);
        }
      }
      await finalizeRuns(ctx, ended, opts.secrets, origin);
      await endLogLines(
        ctx,
        rows.filter((r) => r.state === RunState.PENDING && r.has_tail).map((r) => r.id),
        opts.secrets,
      );
      return items.map((i) => ({ ok: true, value: matched.get(i.runId) }));
    },
  };

  const cancelOverdue: EndingKinds["cancelOverdue"] = {
    name: "cancel-overdue",
    async apply(ctx, items) {
      const { rows } = await ctx.client.query<ChangedRow>(
        `UPDATE runs r SET state = 6, error = u.error, finished_at = $3, lease_expire_at = NULL, version = r.version + 1
         FROM unnest($1::uuid[], $2::bigint[], $4::text[]) AS u(id, token, error)
         WHERE r.id = u.id AND r.fencing_token = u.token AND r.state IN (2, 3) AND r.cancel_requested
         RETURNING r.*`,
        [items.map((i) => i.runId), bigints(items.map((i) => i.token)), ctx.now, items.map((i) => i.error)],
      );
      const matched = new Map(rows.map((r) => [r.id, r]));
      const origin = selfOrigin();
      for (const row of rows) ctx.stage(runCompleted(row, origin, ctx.now));
      await finalizeRuns(ctx, rows, opts.secrets, origin);
      return items.map((i) => ({ ok: true, value: matched.get(i.runId) }));
    },
  };

  const release: EndingKinds["release"] = {
    name: "release",
    async apply(ctx, items) {
      const { rows } = await ctx.client.query<ChangedRow>(
        `UPDATE runs r SET state = 1, lease_expire_at = NULL, version = r.version + 1
         FROM unnest($1::uuid[], $2::text[], $3::bigint[]) AS u(id, agent_id, token)
         WHERE r.id = u.id AND r.agent_id = u.agent_id AND r.fencing_token = u.token AND r.state IN (2, 3)
         RETURNING r.*`,
        [items.map((i) => i.runId), items.map((i) => i.agentId), bigints(items.map((i) => i.token))],
      );
      const matched = new Map(rows.map((r) => [r.id, r]));
      for (const item of items) {
        const row = matched.get(item.runId);
        if (row) ctx.stage(runRejected(row, item.agentId, item.reason, item.origin, ctx.now));
      }
      await endLogLines(ctx, [...matched.keys()], opts.secrets);
      return items.map((i) => ({ ok: true, value: matched.get(i.runId) }));
    },
  };

  return { complete, reject, expire, cancelOverdue, release };
}
