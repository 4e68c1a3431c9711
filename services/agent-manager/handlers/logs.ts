/**
 * ListRunLogs (pages of stored lines) and WatchRunLogs (stored lines, then live ones until the
 * run ends). A watcher is woken when lines of its run are stored here, re-reads every second to
 * see lines stored by another replica, and gets an empty keep-alive after 15 s of silence.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import type { LogEntrySchema, LogFilter } from "../../../gen/codex/agentmanager/v1/logs_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import type { Core } from "../core.js";
import { isTerminal } from "../domain/run-state.js";
import { LIMITS, type Problem } from "../domain/validation.js";
import { type LineFilter, type LineRow, lineCount, readLines } from "../store/logs.js";
import { getRun } from "../store/runs.js";
import { callerOf, runFor, throwIfProblems } from "./context.js";

type Impl = ServiceImpl<typeof AgentManagerService>;

const WATCH_BATCH = 1_000;
const REREAD_MS = 1_000;
const KEEPALIVE_MS = 15_000;

function lineFilter(f: LogFilter | undefined, problems: Problem[], field: string): LineFilter {
  const contains = f?.contains ?? "";
  if ([...contains].length > LIMITS.containsMax)
    problems.push({ field: `${field}.contains`, description: "must be at most 256 characters" });
  return { streams: f?.streams ?? [], step: f?.stepIndex, contains };
}

/** The larger of two offsets (Math.max does not take bigints). */
function maxOf(a: bigint, b: bigint): bigint {
  return a < b ? b : a;
}

function entry(l: LineRow): MessageInitShape<typeof LogEntrySchema> {
  return {
    offset: l.off,
    stream: l.stream,
    ...(l.step !== null ? { stepIndex: l.step } : {}),
    text: l.text,
    time: timestampFromDate(l.time),
  };
}

export function logHandlers(core: Core): Pick<Impl, "listRunLogs" | "watchRunLogs"> {
  return {
    async listRunLogs(req, ctx) {
      const problems: Problem[] = [];
      const filter = lineFilter(req.filter, problems, "filter");
      if (req.offset < 0n) problems.push({ field: "offset", description: "must not be negative" });
      throwIfProblems("invalid log query", problems);
      await runFor(core, callerOf(ctx), req.runId, "read");
      const limit = req.limit <= 0 ? 1_000 : Math.min(req.limit, 5_000);
      const total = await lineCount(core.pool, req.runId);
      const rows = await readLines(core.pool, req.runId, req.offset, limit, filter);
      const last = rows[rows.length - 1];
      const next = rows.length === limit && last ? last.off + 1n : maxOf(req.offset, total);
      return { entries: rows.map(entry), nextOffset: next, endOfLogs: next >= total };
    },

    async *watchRunLogs(req, ctx) {
      const problems: Problem[] = [];
      const filter = lineFilter(req.filter, problems, "filter");
      if (req.startOffset < 0n) problems.push({ field: "start_offset", description: "must not be negative" });
      throwIfProblems("invalid log watch", problems);
      await runFor(core, callerOf(ctx), req.runId, "read");
      let next = req.startOffset;
      let lastSent = Date.now();
      while (!ctx.signal.aborted) {
        const run = await getRun(core.pool, req.runId);
        const ended = run === undefined || isTerminal(run.state);
        const total = await lineCount(core.pool, req.runId);
        const rows = await readLines(core.pool, req.runId, next, WATCH_BATCH, filter);
        const last = rows[rows.length - 1];
        next = rows.length === WATCH_BATCH && last ? last.off + 1n : maxOf(next, total);
        const more = rows.length === WATCH_BATCH;
        if (rows.length > 0 || (ended && !more)) {
          lastSent = Date.now();
          yield { entries: rows.map(entry), endOfLogs: ended && !more };
        }
        if (more) continue;
        if (ended || !req.follow) return;
        await core.logHub.wait(req.runId, REREAD_MS, ctx.signal);
        if (Date.now() - lastSent >= KEEPALIVE_MS) {
          lastSent = Date.now();
          yield { entries: [] };
        }
      }
    },
  };
}
