import { randomUUID } from "node:crypto";
import { clone, create, toBinary } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { SagaStartedSchema } from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import {
  SagaState,
  type StartWorkItemCreationRequest,
  StartWorkItemCreationRequestSchema,
} from "../../../gen/codex/scheduler/v1/saga_pb.js";
import type { SchedulerService } from "../../../gen/codex/scheduler/v1/scheduler_service_pb.js";
import type { ServiceImpl } from "../../../mesh/grpc/types.js";
import { clampPageSize } from "../../../mesh/pagination/page-size.js";
import { withTransaction } from "../../../mesh/postgres/pool.js";
import type { Core } from "../core.js";
import { WORK_ITEM_CREATION } from "../domain/saga-plan.js";
import { toScheduleSpec } from "../domain/schedule-spec.js";
import { idempotencyKeyReused, notFound, Violations } from "../errors.js";
import { stage } from "../events/publish.js";
import type { SagaRunner } from "../saga/runner.js";
import { sagaMessage } from "../saga/saga-message.js";
import { requestHash } from "../store/idempotency.js";
import { getSaga, getSagaByRequest, insertSaga, listSagas, type SagaRow, stepsOf } from "../store/sagas.js";
import { authorize, callerOf, readableProjects, validRequestId } from "./authz.js";
import { fromOptions } from "./options.js";
import { PAGE_SIZES, schedulerPageTokens } from "./paging.js";

type Impl = ServiceImpl<typeof SchedulerService>;

const MAX_WAIT_MS = 30_000;
const MAX_RECIPE_BYTES = 256 * 1024;

function validate(req: StartWorkItemCreationRequest): number {
  const v = new Violations();
  if (!validRequestId(req.requestId)) v.add("request_id", "is required: 1-128 printable ASCII characters");
  if (req.projectId === "") v.add("project_id", "is required");
  if (!req.workItem) v.add("work_item", "is required");
  else if (req.workItem.title.trim() === "") v.add("work_item.title", "is required");
  if (Buffer.byteLength(req.recipeYaml) > MAX_RECIPE_BYTES) v.add("recipe_yaml", "at most 256 KiB");
  v.list.push(...toScheduleSpec(fromOptions(req.schedule), "schedule").violations);
  const waitMs = req.waitTimeout ? durationMs(req.waitTimeout) : 0;
  if (waitMs < 0 || waitMs > MAX_WAIT_MS) v.add("wait_timeout", "must be 0-30s");
  v.throwIfAny("invalid StartWorkItemCreation request");
  return waitMs;
}

/** What makes two starts "the same request": everything but how long the caller waits. */
function hashOf(req: StartWorkItemCreationRequest): string {
  const copy = clone(StartWorkItemCreationRequestSchema, req);
  copy.waitTimeout = undefined;
  return requestHash(Buffer.from(toBinary(StartWorkItemCreationRequestSchema, copy)).toString("base64"));
}

export function sagaHandlers(
  core: Core,
  runner: SagaRunner,
  leaseMs: number,
): Pick<Impl, "startWorkItemCreation" | "getSaga" | "listSagas"> {
  const withSteps = async (s: SagaRow) => sagaMessage(s, (await stepsOf(core.pool, [s.id])).get(s.id) ?? []);
  return {
    async startWorkItemCreation(req, ctx) {
      const principal = callerOf(ctx);
      const waitMs = validate(req);
      authorize(principal, req.projectId, "write", { type: "project", name: req.projectId });
      const hash = hashOf(req);
      let saga = await getSagaByRequest(core.pool, req.requestId);
      if (!saga) {
        const row: SagaRow = {
          id: randomUUID(),
          sagaType: WORK_ITEM_CREATION,
          projectId: req.projectId,
          requestId: req.requestId,
          requestHash: hash,
          request: toBinary(StartWorkItemCreationRequestSchema, req),
          state: "RUNNING",
          workItemId: "",
          taskId: "",
          error: null,
          failedStep: "",
          startedBy: principal,
          correlationId: ctx.correlationId,
          owner: runner.owner,
          createTime: new Date(),
          updateTime: new Date(),
          finishTime: null,
          version: 1n,
        };
        const inserted = await withTransaction(core.pool, async (c) => {
          await c.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`saga:${req.requestId}`]);
          if (await getSagaByRequest(c, req.requestId)) return false;
          await insertSaga(c, row, leaseMs);
          await stage(
            c,
            core.subjects,
            { principal, correlationId: ctx.correlationId },
            {
              schema: SagaStartedSchema,
              payload: create(SagaStartedSchema, {
                sagaId: row.id,
                sagaType: row.sagaType,
                projectId: row.projectId,
                requestId: row.requestId,
              }),
              aggregateType: "saga",
              aggregateId: row.id,
              projectId: row.projectId,
            },
          );
          return true;
        });
        if (inserted) runner.launch(row.id);
        saga = inserted ? row : await getSagaByRequest(core.pool, req.requestId);
      }
      if (!saga) throw notFound("saga", req.requestId);
      if (saga.requestHash !== hash) throw idempotencyKeyReused(req.requestId);
      if (waitMs > 0) await runner.waitFinished(saga.id, waitMs);
      return { saga: await withSteps((await getSaga(core.pool, saga.id)) as SagaRow) };
    },

    async getSaga(req, ctx) {
      const principal = callerOf(ctx);
      const saga = await getSaga(core.pool, req.sagaId);
      if (!saga) throw notFound("saga", req.sagaId);
      authorize(principal, saga.projectId, "read", { type: "saga", name: req.sagaId });
      return { saga: await withSteps(saga) };
    },

    async listSagas(req, ctx) {
      const principal = callerOf(ctx);
      const pages = schedulerPageTokens({ p: req.projectId, s: [...req.states].sort() });
      const key = pages.cursorOf(req.pageToken, {
        arity: 2,
        valid: ([time, id]) => typeof time === "string" && typeof id === "string",
      });
      let projects: string[] | undefined;
      if (req.projectId !== "") {
        authorize(principal, req.projectId, "read", { type: "project", name: req.projectId });
        projects = [req.projectId];
      } else projects = readableProjects(principal);
      const limit = clampPageSize(req.pageSize, PAGE_SIZES);
      const rows = await listSagas(core.pool, {
        projects,
        states: req.states.map((s) => SagaState[s]).filter((s) => s !== undefined),
        after: key ? [String(key[0]), String(key[1])] : undefined,
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const steps = await stepsOf(
        core.pool,
        page.map((s) => s.id),
      );
      const last = page.at(-1);
      return {
        sagas: page.map((s) => sagaMessage(s, steps.get(s.id) ?? [])),
        nextPageToken: rows.length > limit && last ? pages.encode([last.orderTime, last.id]) : "",
      };
    },
  };
}
