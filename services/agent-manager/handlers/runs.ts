/** EnqueueRun (internal, from the scheduler), GetRun, ListRuns and CancelRun. */
import { randomBytes, randomUUID } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { trace } from "@opentelemetry/api";
import type { AgentManagerService } from "../../../gen/codex/agentmanager/v1/agentmanager_service_pb.js";
import { WorkItemSnapshotSchema } from "../../../gen/codex/agentmanager/v1/run_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import type { Core } from "../core.js";
import { pendingOf } from "../dispatch/dispatcher.js";
import { readableProjects } from "../domain/authz.js";
import { checkLabels, checkReason, checkRequired, type Problem } from "../domain/validation.js";
import { originOf } from "../events/origin.js";
import { requestCancel } from "../store/cancel.js";
import { isoOf } from "../store/convert.js";
import { enqueueKind } from "../store/run-batches.js";
import { listRuns, toRun } from "../store/runs.js";
import { inTx } from "../store/tx.js";
import { callerOf, checkAccess, liveRun, requireService, runFor, throwIfProblems } from "./context.js";
import { listPageTokens } from "./paging.js";

type Impl = ServiceImpl<typeof AgentManagerService>;

/** The trace of the enqueueing call, so the run's spans join it; a fresh id otherwise. */
function traceIdNow(): string {
  const id = trace.getActiveSpan()?.spanContext().traceId;
  return id && !/^0+$/.test(id) ? id : randomBytes(16).toString("hex");
}

export function runHandlers(core: Core): Pick<Impl, "enqueueRun" | "getRun" | "listRuns" | "cancelRun"> {
  return {
    async enqueueRun(req, ctx) {
      const principal = requireService(ctx, "EnqueueRun");
      const problems: Problem[] = [
        ...checkRequired(req.taskId, "task_id"),
        ...checkRequired(req.workItemId, "work_item_id"),
        ...checkRequired(req.projectId, "project_id"),
        ...checkLabels(req.agentSelector, "agent_selector"),
      ];
      if (req.attempt < 1) problems.push({ field: "attempt", description: "must be at least 1" });
      if (!req.workItem) problems.push({ field: "work_item", description: "is required" });
      throwIfProblems("invalid run", problems);
      const snapshot = req.workItem ?? ({} as never);
      const id = randomUUID();
      const tools = (snapshot.recipe?.tools ?? []).map((t) => ({ name: t.name, version: t.version }));
      core.dispatcher.offer({
        id,
        priority: req.priority,
        createdMs: Date.now(),
        selector: { ...req.agentSelector },
        tools,
        rejectedBy: [],
      });
      const enqueued = core.committer.submit(enqueueKind, {
        id,
        taskId: req.taskId,
        attempt: req.attempt,
        workItemId: req.workItemId,
        projectId: req.projectId,
        requestId: req.requestId,
        priority: req.priority,
        selector: { ...req.agentSelector },
        tools,
        workItem: toBinary(WorkItemSnapshotSchema, snapshot),
        traceId: traceIdNow(),
        origin: originOf(principal, ctx.correlationId),
      });
      const { row, created } = await enqueued.catch((err: unknown) => {
        core.dispatcher.removePending(id);
        throw err;
      });
      if (!created) core.dispatcher.removePending(id);
      else if (core.dispatcher.enqueued(id)) core.notifier.emit({ t: "pending", run: pendingOf(row) });
      return { run: toRun(row) };
    },

    async getRun(req, ctx) {
      const row = await runFor(core, callerOf(ctx), req.runId, "read");
      return { run: await liveRun(core, row) };
    },

    async listRuns(req, ctx) {
      const principal = callerOf(ctx);
      const pages = listPageTokens([req.projectId, req.workItemId, req.taskId, req.agentId, req.states], 2);
      const key = pages.keyOf(req.pageToken);
      const size = clampPageSize(req.pageSize, { default: 50, max: 500 });
      let projects: string[] | undefined;
      if (req.projectId !== "") {
        checkAccess(principal, req.projectId, "read");
        projects = [req.projectId];
      } else {
        const readable = readableProjects(principal);
        projects = readable === "all" ? undefined : readable;
      }
      if (projects?.length === 0) return { runs: [], nextPageToken: "" };
      const after = key ? ([key[0], key[1]] as [string, string]) : undefined;
      const rows = await listRuns(
        core.pool,
        {
          projects,
          workItemId: req.workItemId,
          taskId: req.taskId,
          agentId: req.agentId,
          states: req.states,
        },
        after,
        size,
      );
      const expiries = await core.leases.expiries(
        rows.filter((r) => r.state === 2 || r.state === 3).map((r) => r.id),
      );
      const live = new Map(
        rows.filter((r) => r.state === 2 || r.state === 3).map((r, i) => [r.id, expiries[i]] as const),
      );
      const last = rows[rows.length - 1];
      return {
        runs: rows.map((r) => toRun(r, live.get(r.id))),
        nextPageToken: rows.length === size && last ? pages.encode([isoOf(last.created_at), last.id]) : "",
      };
    },

    async cancelRun(req, ctx) {
      const principal = callerOf(ctx);
      throwIfProblems("invalid cancellation", checkReason(req.reason));
      await runFor(core, principal, req.runId, "read");
      const { row, effect } = await inTx(core.pool, core.subjects, (tx) =>
        requestCancel(
          tx,
          req.runId,
          {
            reason: req.reason,
            requestedBy: principal.id,
            etag: req.etag,
            origin: originOf(principal, ctx.correlationId),
            secrets: core.secrets,
          },
          (r) => checkAccess(principal, r.project_id, "maintain"),
        ),
      );
      if (effect === "requested") {
        await core.leases.markCancel(row.id, row.fencing_token);
        core.notifier.emit({
          t: "cancel",
          agentId: row.agent_id,
          runId: row.id,
          token: row.fencing_token.toString(),
          reason: req.reason,
        });
      } else if (effect === "cancelled") {
        core.notifier.emit({ t: "taken", runId: row.id });
        core.notifier.emit({ t: "logs", runId: row.id }, "local");
      }
      return { run: await liveRun(core, row) };
    },
  };
}
