/**
 * Cancellation of a run (CancelRun, drain deadlines): a PENDING run is CANCELLED at once
 * (RunCancelRequested, then RunCompleted); an ASSIGNED or RUNNING run is flagged, its agent told,
 * and it ends when the agent completes it as CANCELLED or the grace time runs out; a terminal or
 * already flagged run is left unchanged.
 */
import { RunState } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import { notFound } from "../../../mesh/errors.js";
import { etagMismatch } from "../errors.js";
import type { Origin } from "../events/origin.js";
import { runCancelRequested, runCompleted } from "../events/run-events.js";
import type { AnswerSecrets } from "./answer-secrets.js";
import { finalizeRuns } from "./finalize.js";
import type { BatchContext } from "./group-commit.js";
import { getRun, type RunRow, runEtag } from "./runs.js";

export type CancelEffect = "cancelled" | "requested" | "unchanged";

export async function requestCancel(
  ctx: BatchContext,
  runId: string,
  opts: { reason: string; requestedBy: string; etag: string; origin: Origin; secrets: AnswerSecrets },
  check: (row: RunRow) => void = () => {},
): Promise<{ row: RunRow; effect: CancelEffect }> {
  const row = await getRun(ctx.client, runId, "FOR UPDATE");
  if (!row) throw notFound("run", runId);
  check(row);
  if (opts.etag !== "" && opts.etag !== runEtag(row)) throw etagMismatch(`run ${runId}`);
  if (row.state === RunState.PENDING) {
    const { rows } = await ctx.client.query<RunRow>(
      `UPDATE runs SET state = 6, cancel_requested = true, cancel_reason = $2, cancel_requested_at = $3,
              finished_at = $3, error = $4, version = version + 1
       WHERE id = $1 RETURNING *`,
      [runId, opts.reason, ctx.now, `cancelled before it started${opts.reason ? `: ${opts.reason}` : ""}`],
    );
    const done = rows[0] as RunRow;
    ctx.stage(runCancelRequested(done, opts.requestedBy, opts.reason, opts.origin, ctx.now));
    ctx.stage(runCompleted(done, opts.origin, ctx.now));
    await finalizeRuns(ctx, [done], opts.secrets, opts.origin);
    return { row: done, effect: "cancelled" };
  }
  if ((row.state === RunState.ASSIGNED || row.state === RunState.RUNNING) && !row.cancel_requested) {
    const { rows } = await ctx.client.query<RunRow>(
      `UPDATE runs SET cancel_requested = true, cancel_reason = $2, cancel_requested_at = $3, version = version + 1
       WHERE id = $1 RETURNING *`,
      [runId, opts.reason, ctx.now],
    );
    const flagged = rows[0] as RunRow;
    ctx.stage(runCancelRequested(flagged, opts.requestedBy, opts.reason, opts.origin, ctx.now));
    return { row: flagged, effect: "requested" };
  }
  return { row, effect: "unchanged" };
}
