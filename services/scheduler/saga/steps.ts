import type { StartWorkItemCreationRequest } from "../../../gen/codex/scheduler/v1/saga_pb.js";
import type { Principal } from "../../../mesh/context.js";
import { Code, ServiceError, unavailable } from "../../../mesh/errors.js";
import { asPrincipal, asScheduler, type Core } from "../core.js";
import type { StepName } from "../domain/saga-plan.js";
import { toScheduleSpec } from "../domain/schedule-spec.js";
import { fromOptions } from "../handlers/options.js";
import { scheduleWorkItem } from "../handlers/schedule.js";
import { unscheduleTask } from "../handlers/task-ops.js";
import type { SagaRow } from "../store/sagas.js";

/** What a step sees: the saga, its original request, who started it, and when to give up. */
export interface StepContext {
  core: Core;
  saga: SagaRow;
  request: StartWorkItemCreationRequest;
  signal: AbortSignal;
}

/** What a step's action learned, stored on the saga. */
export interface StepOutput {
  workItemId?: string;
  taskId?: string;
}

export interface StepDefinition {
  name: StepName;
  /** True when the step does not apply to this saga (SKIPPED). */
  skip?(ctx: StepContext): boolean;
  run(ctx: StepContext): Promise<StepOutput>;
  /** Undoes the action; idempotent (compensations are retried and may replay after a crash). */
  compensate?(ctx: StepContext, reason: string): Promise<void>;
}

/** The downstream idempotency key of a step: "<saga id>:<step name>" (saga.proto). */
export const stepKey = (saga: SagaRow, step: StepName) => `${saga.id}:${step}`;

const opts = (ctx: StepContext) => ({ timeoutMs: ctx.core.settings.downstreamTimeoutMs, signal: ctx.signal });
const as = <T>(p: Principal, ctx: StepContext, fn: () => Promise<T>) =>
  asPrincipal(p, fn, ctx.saga.correlationId);
const asSvc = <T>(ctx: StepContext, fn: () => Promise<T>) => asScheduler(fn, ctx.saga.correlationId);

/**
 * The WorkItemCreation steps. Actions on the item itself are taken on behalf of the person who
 * started the saga (the item's creator and the recipe's author are them, which the four-eyes
 * approval rule relies on); quota and compensations are internal calls made as the scheduler.
 */
export const WORK_ITEM_CREATION_STEPS: readonly StepDefinition[] = [
  {
    name: "create_work_item",
    async run(ctx) {
      const wi = ctx.request.workItem;
      const { workItem } = await as(ctx.saga.startedBy, ctx, () =>
        ctx.core.downstream.workItems.createWorkItem(
          {
            projectId: ctx.saga.projectId,
            workItem: {
              title: wi?.title ?? "",
              description: wi?.description ?? "",
              kind: wi?.kind ?? 0,
              labels: wi?.labels ?? {},
              environment: wi?.environment ?? "",
              reviewRequired: wi?.reviewRequired ?? false,
            },
            requestId: stepKey(ctx.saga, "create_work_item"),
          },
          opts(ctx),
        ),
      );
      if (!workItem) throw new ServiceError(Code.INTERNAL, "CreateWorkItem returned no work item");
      return { workItemId: workItem.id };
    },
    async compensate(ctx, reason) {
      if (ctx.saga.workItemId === "") return;
      await asSvc(ctx, () =>
        ctx.core.downstream.workItems.deleteWorkItem(
          { workItemId: ctx.saga.workItemId, allowMissing: true, reason },
          opts(ctx),
        ),
      );
    },
  },
  {
    name: "set_tool_recipe",
    skip: (ctx) => ctx.request.recipeYaml === "",
    async run(ctx) {
      await as(ctx.saga.startedBy, ctx, () =>
        ctx.core.downstream.workItems.setToolRecipe(
          {
            workItemId: ctx.saga.workItemId,
            recipeYaml: ctx.request.recipeYaml,
            requestId: stepKey(ctx.saga, "set_tool_recipe"),
          },
          opts(ctx),
        ),
      );
      return {};
    },
  },
  {
    name: "reserve_quota",
    async run(ctx) {
      const { reservation } = await asSvc(ctx, () =>
        ctx.core.downstream.project.reserveRunSlot(
          {
            projectId: ctx.saga.projectId,
            reservationKey: stepKey(ctx.saga, "reserve_quota"),
            workItemId: ctx.saga.workItemId,
          },
          opts(ctx),
        ),
      );
      if (!reservation?.granted) {
        throw new ServiceError(
          Code.FAILED_PRECONDITION,
          "the saga's run slot reservation was already released",
        );
      }
      return {};
    },
    async compensate(ctx) {
      try {
        await asSvc(ctx, () =>
          ctx.core.downstream.project.releaseRunSlot(
            {
              projectId: ctx.saga.projectId,
              reservationKey: stepKey(ctx.saga, "reserve_quota"),
              consumed: false,
            },
            opts(ctx),
          ),
        );
      } catch (err) {
        if (ServiceError.from(err).code !== Code.NOT_FOUND) throw err;
      }
    },
  },
  {
    name: "schedule_task",
    async run(ctx) {
      const { spec } = toScheduleSpec(fromOptions(ctx.request.schedule), "schedule");
      const task = await scheduleWorkItem(ctx.core, {
        workItemId: ctx.saga.workItemId,
        spec,
        requestId: stepKey(ctx.saga, "schedule_task"),
        cause: {
          principal: ctx.saga.startedBy,
          correlationId: ctx.saga.correlationId,
          causationId: ctx.saga.id,
        },
        initialReservationKey: stepKey(ctx.saga, "reserve_quota"),
      });
      return { taskId: task.id };
    },
    async compensate(ctx, reason) {
      if (ctx.saga.taskId === "") return;
      await unscheduleTask(
        ctx.core,
        { taskId: ctx.saga.taskId, allowMissing: true, reason },
        { principal: { type: "service", id: "scheduler" }, correlationId: ctx.saga.correlationId },
      );
      await effectsSettled(ctx, ctx.saga.workItemId);
    },
  },
  {
    name: "notify",
    // Staged as SagaCompleted in the transaction that completes the saga (see runner.ts).
    run: async () => ({}),
  },
];

/**
 * Waits until the calls the scheduler owes the work item (its QUEUED, then APPROVED
 * transitions) went out, so the next compensation (deleting the item, which must be back in
 * APPROVED) does not race them. UNAVAILABLE (retried) if they take too long.
 */
async function effectsSettled(ctx: StepContext, workItemId: string): Promise<void> {
  const deadline = Date.now() + ctx.core.settings.downstreamTimeoutMs;
  ctx.core.wake.effects();
  while (Date.now() < deadline && !ctx.signal.aborted) {
    const { rows } = await ctx.core.pool.query("SELECT 1 FROM effects WHERE work_item_id = $1 LIMIT 1", [
      workItemId,
    ]);
    if (rows.length === 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw unavailable(`effects of work item ${workItemId} still pending`);
}
