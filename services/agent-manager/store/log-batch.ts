/**
 * Batched log appends: for all runs of a batch, one lease check, one cursor read, one INSERT of
 * lines and one cursor write. An ASSIGNED run that sends logs moves to RUNNING (logs.proto).
 */
import {
  appendChunks,
  EMPTY_CURSOR,
  type LogCursor,
  type LogLine,
  type RawChunk,
} from "../domain/log-lines.js";
import { checkLease } from "../domain/run-state.js";
import type { Origin } from "../events/origin.js";
import { runStarted } from "../events/run-events.js";
import type { AnswerSecrets } from "./answer-secrets.js";
import { type LeasedItem, refusal } from "./batch-support.js";
import type { BatchKind, Outcome } from "./group-commit.js";
import { insertLines, lockCursors, saveCursors } from "./logs.js";
import { startRuns } from "./run-batches.js";
import type { RunRow } from "./runs.js";

export interface LogItem extends LeasedItem {
  chunks: RawChunk[];
  origin: Origin;
}

/** Highest chunk seq stored for the run, and how many lines this append stored. */
export interface LogResult {
  persistedSeq: bigint;
  lines: number;
}

export function logKind(secrets: AnswerSecrets): BatchKind<LogItem, LogResult> {
  return {
    name: "logs",
    async apply(ctx, items) {
      const ids = items.map((i) => i.runId);
      const { rows: locked } = await ctx.client.query<RunRow>(
        "SELECT * FROM runs WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
        [ids],
      );
      const runs = new Map(locked.map((r) => [r.id, r]));
      const valid: LogItem[] = [];
      const outcomes = new Map<LogItem, Outcome<LogResult>>();
      for (const item of items) {
        const row = runs.get(item.runId);
        const why = row
          ? checkLease(
              { state: row.state, fencingToken: row.fencing_token, agentId: row.agent_id },
              item.agentId,
              item.token,
            )
          : "STALE_LEASE";
        if (!row || why !== undefined) outcomes.set(item, refusal(row, item));
        else valid.push(item);
      }
      const starting = valid.filter((i) => runs.get(i.runId)?.state === 2);
      const started = await startRuns(
        ctx.client,
        starting.map((i) => ({ ...i, step: undefined })),
        ctx.now,
      );
      for (const item of starting) {
        const row = started.get(item.runId);
        if (row) ctx.stage(runStarted(row, item.origin, ctx.now));
      }
      const cursors = await lockCursors(
        ctx.client,
        valid.map((i) => i.runId),
      );
      const secretValues = await secrets.forRuns(
        ctx.client,
        valid.map((i) => i.runId),
      );
      const lines: (LogLine & { runId: string })[] = [];
      const updated = new Map<string, LogCursor>();
      for (const item of valid) {
        const before = cursors.get(item.runId) ?? EMPTY_CURSOR;
        const out = appendChunks(before, item.chunks, secretValues.get(item.runId) ?? []);
        for (const l of out.lines) lines.push({ ...l, runId: item.runId });
        if (out.cursor.lastSeq !== before.lastSeq) updated.set(item.runId, out.cursor);
        outcomes.set(item, {
          ok: true,
          value: { persistedSeq: out.cursor.lastSeq, lines: out.lines.length },
        });
      }
      await insertLines(ctx.client, lines);
      await saveCursors(ctx.client, updated);
      return items.map((i) => outcomes.get(i) ?? { ok: false, error: new Error("log append lost") });
    },
  };
}
