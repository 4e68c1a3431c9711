import { durationMs } from "@bufbuild/protobuf/wkt";
import type { SchedulerService } from "../../../gen/codex/scheduler/v1/scheduler_service_pb.js";
import { RunOutcome, TaskState } from "../../../gen/codex/scheduler/v1/task_pb.js";
import type { CallContext, ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import type { Core } from "../core.js";
import { applyRunOutcome, type RunResult } from "../dispatch/outcome.js";
import { toScheduleSpec } from "../domain/schedule-spec.js";
import { notFound, permissionDenied, Violations } from "../errors.js";
import type { Cause } from "../events/publish.js";
import { getTask, isUuid, TASK_COLUMNS, toTaskRow } from "../store/tasks.js";
import { authorize, callerOf, readableProjects, validRequestId } from "./authz.js";
import { fromOptions } from "./options.js";
import { PAGE_SIZES, schedulerPageTokens } from "./paging.js";
import { scheduleWorkItem } from "./schedule.js";
import { taskMessages } from "./task-message.js";
import { cancelTaskById, requeueTask, unscheduleTask } from "./task-ops.js";

type Impl = ServiceImpl<typeof SchedulerService>;

export function causeOf(ctx: CallContext): Cause {
  return { principal: callerOf(ctx), correlationId: ctx.correlationId };
}

function requireIds(v: Violations, fields: Record<string, string>, requestId?: string): void {
  for (const [field, value] of Object.entries(fields)) if (value === "") v.add(field, "is required");
  if (requestId !== undefined && requestId !== "" && !validRequestId(requestId)) {
    v.add("request_id", "must be 1-128 printable ASCII characters");
  }
}

const RESULTS: Partial<Record<RunOutcome, RunResult>> = {
  [RunOutcome.SUCCEEDED]: "SUCCEEDED",
  [RunOutcome.FAILED]: "FAILED",
  [RunOutcome.CANCELLED]: "CANCELLED",
  [RunOutcome.LOST]: "LOST",
};

export function taskHandlers(
  core: Core,
): Pick<
  Impl,
  | "scheduleWorkItem"
  | "getTask"
  | "listTasks"
  | "requeueTask"
  | "cancelTask"
  | "unscheduleTask"
  | "reportRunOutcome"
> {
  return {
    async scheduleWorkItem(req, ctx) {
      const cause = causeOf(ctx);
      const v = new Violations();
      requireIds(v, { work_item_id: req.workItemId }, req.requestId);
      const { spec, violations } = toScheduleSpec(fromOptions(req.options), "options");
      v.list.push(...violations);
      v.throwIfAny("invalid ScheduleWorkItem request");
      const task = await scheduleWorkItem(core, {
        workItemId: req.workItemId,
        spec,
        requestId: req.requestId,
        cause,
      });
      return { task: (await taskMessages(core.pool, [task]))[0] };
    },

    async getTask(req, ctx) {
      const principal = callerOf(ctx);
      const t = await getTask(core.pool, req.taskId);
      if (!t) throw notFound("task", req.taskId);
      authorize(principal, t.projectId, "read", { type: "task", name: req.taskId });
      return { task: (await taskMessages(core.pool, [t]))[0] };
    },

    async listTasks(req, ctx) {
      const principal = callerOf(ctx);
      const pages = schedulerPageTokens({ p: req.projectId, s: [...req.states].sort(), w: req.workItemId });
      // (priority, ready-or-create time, id) of the last task returned.
      const key = pages.cursorOf(req.pageToken, {
        arity: 3,
        valid: ([priority, time, id]) =>
          typeof priority === "number" && typeof time === "string" && typeof id === "string",
      });
      let projects: string[] | undefined;
      if (req.projectId !== "") {
        authorize(principal, req.projectId, "read", { type: "project", name: req.projectId });
        projects = [req.projectId];
      } else projects = readableProjects(principal);
      const limit = clampPageSize(req.pageSize, PAGE_SIZES);
      const states = req.states.map((s) => TaskState[s]).filter((s) => s !== undefined);
      const { rows } = await core.pool.query(
        `SELECT ${TASK_COLUMNS}, COALESCE(ready_time, create_time)::text AS order_time FROM tasks
          WHERE ($1::text[] IS NULL OR project_id = ANY($1))
            AND (cardinality($2::text[]) = 0 OR state = ANY($2))
            AND ($3 = '' OR work_item_id = $3)
            AND ($4::int IS NULL OR priority < $4 OR (priority = $4 AND (COALESCE(ready_time, create_time) > $5::timestamptz
                 OR (COALESCE(ready_time, create_time) = $5::timestamptz AND id > $6::uuid))))
          ORDER BY priority DESC, COALESCE(ready_time, create_time), id LIMIT $7`,
        [
          projects ?? null,
          states,
          req.workItemId,
          key?.[0] ?? null,
          key?.[1] ?? null,
          key?.[2] ?? null,
          limit + 1,
        ],
      );
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      const next =
        rows.length > limit && last
          ? pages.encode([last.priority as number, last.order_time as string, last.id as string])
          : "";
      return { tasks: await taskMessages(core.pool, page.map(toTaskRow)), nextPageToken: next };
    },

    async requeueTask(req, ctx) {
      const v = new Violations();
      requireIds(v, { task_id: req.taskId }, req.requestId);
      const delayMs = req.delay ? durationMs(req.delay) : 0;
      if (delayMs < 0) v.add("delay", "must not be negative");
      if (req.priority !== undefined && (req.priority < -1000 || req.priority > 1000))
        v.add("priority", "must be -1000..1000");
      if (req.reason.length > 1024) v.add("reason", "at most 1024 characters");
      v.throwIfAny("invalid RequeueTask request");
      const task = await requeueTask(
        core,
        {
          taskId: req.taskId,
          delayMs,
          priority: req.priority,
          reason: req.reason,
          etag: req.etag,
          requestId: req.requestId,
        },
        causeOf(ctx),
      );
      return { task: (await taskMessages(core.pool, [task]))[0] };
    },

    async cancelTask(req, ctx) {
      const v = new Violations();
      requireIds(v, { task_id: req.taskId }, req.requestId);
      if (req.reason.length > 1024) v.add("reason", "at most 1024 characters");
      v.throwIfAny("invalid CancelTask request");
      const task = await cancelTaskById(
        core,
        { taskId: req.taskId, reason: req.reason, etag: req.etag, requestId: req.requestId },
        causeOf(ctx),
      );
      return { task: (await taskMessages(core.pool, [task]))[0] };
    },

    async unscheduleTask(req, ctx) {
      const cause = causeOf(ctx);
      if (cause.principal.type !== "service") throw permissionDenied("UnscheduleTask is internal");
      const v = new Violations();
      requireIds(v, { task_id: req.taskId });
      v.throwIfAny("invalid UnscheduleTask request");
      await unscheduleTask(
        core,
        { taskId: req.taskId, allowMissing: req.allowMissing, reason: req.reason },
        cause,
      );
      return {};
    },

    async reportRunOutcome(req, ctx) {
      const cause = causeOf(ctx);
      if (cause.principal.type !== "service") throw permissionDenied("ReportRunOutcome is internal");
      const v = new Violations();
      requireIds(v, { task_id: req.taskId, run_id: req.runId });
      const result = RESULTS[req.outcome];
      if (!result) v.add("outcome", "is required");
      if (req.taskId !== "" && !isUuid(req.taskId)) v.add("task_id", "must be a task id");
      v.throwIfAny("invalid ReportRunOutcome request");
      const { task } = await applyRunOutcome(
        core,
        {
          taskId: req.taskId,
          runId: req.runId,
          attempt: req.attempt,
          result: result as RunResult,
          error: req.error,
        },
        cause,
      );
      return { task: (await taskMessages(core.pool, [task]))[0] };
    },
  };
}
