import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { EventEnvelope } from "../../../gen/codex/events/v1/envelope_pb.js";
import {
  ScheduleWorkItemRejectedSchema,
  ScheduleWorkItemSchema,
} from "../../../gen/codex/events/v1/scheduler_events_pb.js";
import { ServiceError } from "../../../mesh/errors.js";
import type { ConsumedMessage } from "../../../mesh/nats/consumer.js";
import { type Core, transact } from "../core.js";
import { toScheduleSpec } from "../domain/schedule-spec.js";
import { invalidArgument, isRetryable } from "../errors.js";
import { fromCommand } from "../handlers/options.js";
import { scheduleWorkItem } from "../handlers/schedule.js";
import { statusBytes, statusOf } from "../saga/saga-message.js";
import { lastTaskOf } from "../store/tasks.js";
import { stage } from "./publish.js";

type Decode = <D extends DescMessage>(msg: ConsumedMessage, schema: D) => [EventEnvelope, MessageShape<D>];

/**
 * The ScheduleWorkItem command: the asynchronous ScheduleWorkItem RPC. Commands come from the
 * orchestrator's own services (e.g. the workitem service retrying an item, FAILED -> QUEUED),
 * so they are trusted; scheduled_by names the principal behind them. A command that leaves
 * retry_policy unset inherits the options of the item's previous task (the contract's "with
 * the options of the item's last task"). A refusal is published as ScheduleWorkItemRejected
 * with the status the RPC would have returned; transient failures are retried by redelivery.
 */
export async function handleScheduleCommand(core: Core, decode: Decode, msg: ConsumedMessage): Promise<void> {
  const [env, cmd] = decode(msg, ScheduleWorkItemSchema);
  const requestId = cmd.requestId || env.id;
  const principal = { type: "service" as const, id: env.source || "command" };
  const cause = { principal, correlationId: env.correlationId, causationId: env.id };
  try {
    if (!cmd.retryPolicy) await inherit(core, cmd);
    const { spec, violations } = toScheduleSpec(fromCommand(cmd), "");
    if (violations.length > 0) throw invalidArgument("invalid ScheduleWorkItem command", violations);
    await scheduleWorkItem(core, {
      workItemId: cmd.workItemId,
      spec,
      requestId,
      cause,
      ...(cmd.scheduledBy ? { scheduledBy: cmd.scheduledBy } : {}),
    });
  } catch (err) {
    if (isRetryable(err) || !(err instanceof ServiceError)) throw err;
    await transact(core, (tx) =>
      stage(tx.client, core.subjects, cause, {
        schema: ScheduleWorkItemRejectedSchema,
        payload: create(ScheduleWorkItemRejectedSchema, {
          workItemId: cmd.workItemId,
          requestId,
          status: statusOf(statusBytes(err)),
        }),
        aggregateType: "work_item",
        aggregateId: cmd.workItemId || env.aggregateId || "unknown",
        projectId: env.projectId,
      }),
    );
  }
}

async function inherit(core: Core, cmd: MessageShape<typeof ScheduleWorkItemSchema>): Promise<void> {
  const last = cmd.workItemId ? await lastTaskOf(core.pool, cmd.workItemId) : undefined;
  if (!last) return;
  cmd.retryPolicy = {
    $typeName: "codex.scheduler.v1.RetryPolicy",
    maxRetries: last.maxRetries,
    backoffBase: durationFromMs(last.backoffBaseMs),
    backoffCap: durationFromMs(last.backoffCapMs),
    jitter: last.jitter === "NONE" ? 2 : 1,
  };
  if (cmd.priority === 0) cmd.priority = last.priority;
  if (Object.keys(cmd.agentSelector).length === 0) cmd.agentSelector = last.agentSelector;
  if (cmd.dependencyFailurePolicy === 0)
    cmd.dependencyFailurePolicy = last.dependencyFailurePolicy === "BLOCK_DEPENDENTS" ? 2 : 1;
}
