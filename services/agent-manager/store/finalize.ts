/**
 * What happens, in the same transaction, when runs reach a terminal state: their unfinished
 * log lines are stored as the last lines, pending info requests are CANCELLED (with an event),
 * and answer values are erased (info_request.proto: "deleted when the run ends").
 *
 * Most runs have neither an unfinished line nor an info request: the statements that end a run
 * return {@link FINALIZE_FLAGS}, and only runs flagged cost the extra statements here.
 */
import { InfoRequestCancelledSchema } from "../../../gen/codex/events/v1/agent_events_pb.js";
import { flushPartials, type LogCursor, type LogLine } from "../domain/log-lines.js";
import { stateName } from "../errors.js";
import { envelope, type Origin } from "../events/origin.js";
import type { AnswerSecrets } from "./answer-secrets.js";
import type { BatchContext } from "./group-commit.js";
import { insertLines, lockCursors, saveCursors } from "./logs.js";
import type { RunRow } from "./runs.js";

/** SQL for a RETURNING list of an UPDATE of `runs r`: whether finalizing has work to do. */
export const FINALIZE_FLAGS = `EXISTS (SELECT 1 FROM log_cursors c WHERE c.run_id = r.id AND c.partials <> '{}'::jsonb) AS has_tail,
  EXISTS (SELECT 1 FROM info_requests i WHERE i.run_id = r.id AND (i.state = 1 OR i.answer_sealed IS NOT NULL)) AS has_info`;

/** A row returned with {@link FINALIZE_FLAGS}; rows without them are finalized fully. */
export type Flagged = RunRow & { has_tail?: boolean; has_info?: boolean };

export async function finalizeRuns(
  ctx: BatchContext,
  all: readonly Flagged[],
  secrets: AnswerSecrets,
  origin: Origin,
): Promise<void> {
  await endLogLines(
    ctx,
    all.filter((r) => r.has_tail !== false).map((r) => r.id),
    secrets,
  );
  const rows = all.filter((r) => r.has_info !== false);
  if (rows.length === 0) return;
  const ids = rows.map((r) => r.id);
  const { rows: closed } = await ctx.client.query<{
    id: string;
    run_id: string;
    project_id: string;
    version: bigint;
    cancelled: boolean;
  }>(
    `UPDATE info_requests SET state = CASE WHEN state = 1 THEN 3 ELSE state END, answer_sealed = NULL,
            version = version + CASE WHEN state = 1 THEN 1 ELSE 0 END
     WHERE run_id = ANY($1::uuid[]) AND (state = 1 OR answer_sealed IS NOT NULL)
     RETURNING id, run_id, project_id, version, (answer_time IS NULL) AS cancelled`,
    [ids],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const c of closed) {
    if (!c.cancelled) continue;
    const run = byId.get(c.run_id);
    ctx.stage(
      envelope(
        InfoRequestCancelledSchema,
        {
          infoRequestId: c.id,
          runId: c.run_id,
          reason: `run ended ${run ? stateName(run.state) : ""}`.trim(),
        },
        { type: "info_request", id: c.id, version: c.version, projectId: c.project_id },
        origin,
        ctx.now,
      ),
    );
  }
}

/**
 * Stores the unfinished last line of each stream as a line: the run ended, or its lease ended
 * (requeued), and the next holder's output must not be glued to the previous holder's.
 */
export async function endLogLines(
  ctx: BatchContext,
  runIds: readonly string[],
  secrets: AnswerSecrets,
): Promise<void> {
  if (runIds.length === 0) return;
  const cursors = await lockCursors(ctx.client, runIds, true);
  if (cursors.size === 0) return;
  const values = await secrets.forRuns(ctx.client, [...cursors.keys()]);
  const lines: (LogLine & { runId: string })[] = [];
  const updated = new Map<string, LogCursor>();
  for (const [runId, cursor] of cursors) {
    const flushed = flushPartials(cursor, values.get(runId) ?? []);
    for (const l of flushed.lines) lines.push({ ...l, runId });
    updated.set(runId, flushed.cursor);
  }
  await insertLines(ctx.client, lines);
  await saveCursors(ctx.client, updated);
}
